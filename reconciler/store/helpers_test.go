package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// Environment of a re-executed test binary that runs one merge.
const (
	envLive   = "HYDRAFY_TEST_MERGE_LIVE"
	envStaged = "HYDRAFY_TEST_MERGE_STAGED"
	envCrash  = "HYDRAFY_TEST_CRASH" // "step:n": SIGKILL at the nth time step is reached
)

func TestMain(m *testing.M) {
	if db := os.Getenv(envWALDB); db != "" {
		childWAL(db, os.Getenv(envWALSQL))
	}
	if live := os.Getenv(envLive); live != "" {
		os.Exit(childMerge(live, os.Getenv(envStaged), os.Getenv(envCrash)))
	}
	dir, err := os.MkdirTemp("", "store-templates-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	templateDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childMerge runs one merge in this process and kills itself with SIGKILL
// when the merge reaches the named step for the nth time.
func childMerge(live, staged, crash string) int {
	if crash != "" {
		step, nth, _ := strings.Cut(crash, ":")
		n, err := strconv.Atoi(nth)
		if err != nil {
			n = 1
		}
		seen := 0
		hook = func(s string) {
			if s != step {
				return
			}
			if seen++; seen == n {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	if _, err := Merge(context.Background(), live, staged, MergeOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runChild merges staged into live in a child process, with crash as its
// crash point (empty: none). It returns whether the child was killed.
func runChild(t *testing.T, live, staged, crash string) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLive+"="+live, envStaged+"="+staged, envCrash+"="+crash)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	t.Fatalf("merge child (crash %q): %v\n%s", crash, err, out)
	return false
}

var (
	templateDir string
	templates   = map[string]string{}
)

// template builds a store once per test binary with build and returns a
// fresh copy of it in a temp dir (same filesystem as every other copy).
func template(t testing.TB, name string, build func(t testing.TB, root string)) string {
	t.Helper()
	src, ok := templates[name]
	if !ok {
		src = filepath.Join(templateDir, name)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		build(t, src)
		templates[name] = src
	}
	dst := filepath.Join(t.TempDir(), "root")
	copyTree(t, src, dst)
	return dst
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

// Two releases that share 17 of their 20 paths (85%), as two nixos/nix
// releases do.
var (
	releaseA = synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 20, Shared: 17, Base: "b", FilesPerPath: 6, FileSize: 300})
	releaseB = synth.Release(synth.ReleaseOptions{Version: "2.25.0", Paths: 20, Shared: 17, Base: "b", FilesPerPath: 6, FileSize: 300})
)

// nixStore builds spec with real Nix doing the registration.
func nixStore(spec synth.Spec) func(testing.TB, string) {
	return func(t testing.TB, root string) { nixtest.Build(t, root, spec) }
}

// goStore builds spec in Go alone (faster, for big stores).
func goStore(spec synth.Spec) func(testing.TB, string) {
	return func(t testing.TB, root string) {
		if _, err := synth.Build(root, spec); err != nil {
			t.Fatal(err)
		}
	}
}

// refsOf returns the references of paths in root, as Nix reports them
// (`nix path-info --json`, one call).
func refsOf(t testing.TB, root string, paths []string) map[string][]string {
	t.Helper()
	out := nixtest.Nix(t, nil, "nix", append([]string{"path-info", "--store", root, "--json"}, paths...)...)
	var infos []struct {
		Path       string   `json:"path"`
		References []string `json:"references"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("parsing nix path-info --json: %v", err)
	}
	m := map[string][]string{}
	for _, in := range infos {
		refs := append([]string{}, in.References...)
		sort.Strings(refs)
		m[in.Path] = refs
	}
	return m
}

func union(sets ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sets {
		for _, p := range s {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

func minus(a, b []string) []string {
	drop := map[string]bool{}
	for _, p := range b {
		drop[p] = true
	}
	out := []string{}
	for _, p := range a {
		if !drop[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// addCache adds a content-addressed path to root with nix-store --add,
// as a job's build result lands in the shared store.
func addCache(t testing.TB, root, name string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", name), []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return nixtest.Add(t, root, src)
}

// snapshot describes every entry under root: type, mode, size, link
// target and content hash. Equal snapshots mean nothing changed.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func assertUnchanged(t testing.TB, before map[string]string, root string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
		t.Errorf("%s changed (-before +after):\n%s", root, diff)
	}
}

// dbRow returns the id and registration time of path in root's db.
func dbRow(t testing.TB, root, path string) (int64, int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbFile(root)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id, reg int64
	if err := db.QueryRow(`select id, registrationTime from ValidPaths where path = ?`, path).Scan(&id, &reg); err != nil {
		t.Fatalf("row of %s: %v", path, err)
	}
	return id, reg
}

func storePaths(spec synth.Spec) []string {
	var out []string
	for _, p := range spec.Paths {
		seed := spec.Seed
		if p.Seed != "" {
			seed = p.Seed
		}
		out = append(out, synth.StorePath(seed, p.Name))
	}
	sort.Strings(out)
	return out
}

// Bigger releases (85% shared) for random kills and benchmarks.
var (
	bigA = synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 100, Shared: 85, Base: "big", FilesPerPath: 8, FileSize: 2048})
	bigB = synth.Release(synth.ReleaseOptions{Version: "2.25.0", Paths: 100, Shared: 85, Base: "big", FilesPerPath: 8, FileSize: 2048})
)
