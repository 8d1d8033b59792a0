package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// Environment of a re-executed test binary that runs one merge (the
// child "merge").
const (
	envLive   = "HYDRAFY_TEST_MERGE_LIVE"
	envStaged = "HYDRAFY_TEST_MERGE_STAGED"
	envMode   = "HYDRAFY_TEST_MERGE_MODE" // "live": a live merge
	// A re-executed test binary that runs one garbage collection.
	envGCLive   = "HYDRAFY_TEST_GC_LIVE"
	envGCPolicy = "HYDRAFY_TEST_GC_POLICY" // GCPolicy as JSON
)

func TestMain(m *testing.M) {
	if nixtest.Child() == "wal" {
		childWAL(os.Getenv(envWALDB), os.Getenv(envWALSQL))
	}
	if nixtest.Child() == "merge" {
		os.Exit(childMerge(os.Getenv(envLive), os.Getenv(envStaged)))
	}
	if nixtest.Child() == "gc" {
		os.Exit(childGC(os.Getenv(envGCLive), os.Getenv(envGCPolicy)))
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

// childMerge runs one merge in this process; the kill helper's hook
// kills it at the step a test named.
func childMerge(live, staged string) int {
	hook = nixtest.KillHook()
	if _, err := Merge(context.Background(), live, staged, MergeOptions{Live: os.Getenv(envMode) == "live"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childGC runs one collection with the JSON policy in this process; the
// kill helper's hook kills it at the step a test named.
func childGC(live, policy string) int {
	hook = nixtest.KillHook()
	var pol GCPolicy
	if err := json.Unmarshal([]byte(policy), &pol); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := GC(context.Background(), live, GCOptions{Policy: pol}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// mergeChild is a child process that merges staged into live.
func mergeChild(live, staged string) *exec.Cmd { return mergeChildMode(live, staged, "") }

// mergeChildMode is mergeChild with a merge mode ("live" or "").
func mergeChildMode(live, staged, mode string) *exec.Cmd {
	return nixtest.Command("merge", envLive+"="+live, envStaged+"="+staged, envMode+"="+mode)
}

// runChildMode is runChild with a merge mode ("live" or "").
func runChildMode(t *testing.T, live, staged, crash, mode string) (killed bool) {
	t.Helper()
	return nixtest.Kill(t, mergeChildMode(live, staged, mode), nixtest.At(crash))
}

// runChild merges staged into live in a child process, killed at crash
// ("step" or "step:n"; empty: never). It returns whether it was killed.
func runChild(t *testing.T, live, staged, crash string) (killed bool) {
	t.Helper()
	return nixtest.Kill(t, mergeChild(live, staged), nixtest.At(crash))
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

// dbRow returns the id and registration time of path in root's db.
func dbRow(t testing.TB, root, path string) (int64, int64) {
	t.Helper()
	var id, reg int64
	nixtest.QueryRow(t, root, `select id, registrationTime from ValidPaths where path = ?`, []any{path}, &id, &reg)
	return id, reg
}

// Bigger releases (85% shared) for random kills and benchmarks.
var (
	bigA = synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 100, Shared: 85, Base: "big", FilesPerPath: 8, FileSize: 2048})
	bigB = synth.Release(synth.ReleaseOptions{Version: "2.25.0", Paths: 100, Shared: 85, Base: "big", FilesPerPath: 8, FileSize: 2048})
)
