package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// gcStore is a store dir seeded with two releases, as `hydrafy seed` left
// it, plus an old and a new build result.
type gcStore struct {
	dir                string
	old, cur           []string // the releases' paths
	oldRef, curRef     string   // REF@DIGEST as seeded
	oldBuild, newBuild string
}

// newGCStore builds the store with `hydrafy seed` and real Nix.
func newGCStore(t *testing.T, paths int) *gcStore {
	t.Helper()
	host := nixtest.Registry(t)
	s := &gcStore{dir: filepath.Join(t.TempDir(), "nix-backup")}
	var refs []string
	for i, v := range []string{"2.24.9", "2.25.0"} {
		root := t.TempDir()
		nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: v, Paths: paths, Shared: paths - 3, Base: "n", FilesPerPath: 4}))
		p := nixtest.Paths(t, root)
		img, err := synth.Image(root, synth.ImageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ref := host + "/nixos/nix:" + v
		digest := nixtest.PushImage(t, ref, img)
		if code, _, errs := runCmd("seed", ref, "--store", s.dir); code != 0 {
			t.Fatalf("seed %s: %s", v, errs)
		}
		refs = append(refs, host+"/nixos/nix@"+digest)
		if i == 0 {
			s.old = p
		} else {
			s.cur = p
		}
	}
	s.oldRef, s.curRef = refs[0], refs[1]
	s.oldBuild = nixtest.AddBuild(t, s.dir, "old-build")
	nixtest.SetRegistered(t, s.dir, s.oldBuild, time.Now().Add(-30*24*time.Hour))
	s.newBuild = nixtest.AddBuild(t, s.dir, "new-build", s.cur[0])
	return s
}

// TestGCCommand runs `hydrafy gc --store`: the dry run prints what would
// go, grouped, and changes nothing; bad input changes nothing; the real
// run leaves exactly the closure of what it keeps, and roots for it.
func TestGCCommand(t *testing.T) {
	s := newGCStore(t, 8)
	before := nixtest.Paths(t, s.dir)
	// Both releases were seeded just now: --keep-images 0 keeps none by age.
	code, out, errs := runCmd("gc", "--store", s.dir, "--keep", s.curRef, "--keep-images", "0", "--dry-run")
	gone := slices.DeleteFunc(slices.Clone(s.old), func(p string) bool { return slices.Contains(s.cur, p) })
	want := regexp.MustCompile(`(?s)^dry run: collecting \S+ would delete 4 paths \([0-9.]+ [KMG]?i?B\); 9 paths \([0-9.]+ [KMG]?i?B\) stay\n` +
		`kept by digest: sha256:[0-9a-f]{64}\n` +
		`old images: 1 \([^)]+\)\n  \S+/nixos/nix@sha256:[0-9a-f]{64}  seeded \d{4}-\d\d-\d\d  3 paths  [^\n]+\n` +
		`old builds: 1 \([^)]+\), oldest first\n  \d{4}-\d\d-\d\d +[0-9.]+ [KMG]?i?B  ` + regexp.QuoteMeta(s.oldBuild) + "\n$")
	if code != 0 || !want.MatchString(out) || errs != "" {
		t.Errorf("dry run: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	if len(gone) != 3 {
		t.Fatalf("test store: %d paths only the old release has", len(gone))
	}
	if diff := cmp.Diff(before, nixtest.Paths(t, s.dir)); diff != "" {
		t.Fatalf("dry run changed the store (-before +after):\n%s", diff)
	}

	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--store", s.dir}, 2, "name the images to keep with --keep"},
		{[]string{"--store", s.dir, "--keep", "nixos/nix:latest"}, 2, "not a digest reference"},
		{[]string{"--store", s.dir, "--keep", "nixos/nix@sha256:" + strings.Repeat("c", 64)}, 1, "no image with digest sha256:cccc"},
		{[]string{"--store", s.dir, "--keep", s.curRef, "--keep-builds", "soon"}, 2, "not a duration"},
		{[]string{"--store", s.dir, "--keep", s.curRef, "--max-size", "big"}, 2, "not a size"},
		{[]string{"--config", "x.toml", "--keep", s.curRef}, 2, "--keep goes with --store"},
	} {
		code, out, errs := runCmd(append([]string{"gc"}, tc.args...)...)
		if code != tc.code || out != "" || !strings.Contains(errs, tc.err) {
			t.Errorf("gc %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errs, tc.code, tc.err)
		}
		if tc.code == 1 && strings.Count(errs, "\n") != 1 {
			t.Errorf("gc %v: want one line, got %q", tc.args, errs)
		}
	}
	if diff := cmp.Diff(before, nixtest.Paths(t, s.dir)); diff != "" {
		t.Fatalf("bad input changed the store (-before +after):\n%s", diff)
	}

	code, out, errs = runCmd("gc", "--store", s.dir, "--keep", s.curRef, "--keep-images", "0", "--keep-builds", "14d")
	if code != 0 || !strings.HasPrefix(out, "collecting "+s.dir+" deleted 4 paths") || errs != "" {
		t.Errorf("gc: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	kept := nixtest.Closure(t, s.dir, append([]string{s.newBuild}, s.cur...)...)
	if diff := cmp.Diff(kept, nixtest.Verify(t, s.dir)); diff != "" {
		t.Errorf("after gc (-want +got):\n%s", diff)
	}
	// A job's own GC keeps what hydrafy kept.
	nixtest.JobGC(t, s.dir, filepath.Join(s.dir, "nix/var/nix/gcroots/hydrafy"))
	if diff := cmp.Diff(kept, nixtest.Verify(t, s.dir)); diff != "" {
		t.Errorf("after a job's GC (-want +got):\n%s", diff)
	}
}

// TestGCCommandKilledAtRandom kills real `hydrafy gc` processes with
// SIGKILL at random moments: after every kill Nix verifies the store,
// which holds all its paths or exactly the kept ones; a run that completes
// starts the next on a fresh copy; the last run completes.
func TestGCCommandKilledAtRandom(t *testing.T) {
	s := newGCStore(t, 40)
	template := filepath.Join(t.TempDir(), "template")
	if out, err := exec.Command("cp", "-a", s.dir, template).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	fresh := func() {
		if err := os.RemoveAll(s.dir); err != nil {
			exec.Command("chmod", "-R", "u+w", s.dir).Run()
			os.RemoveAll(s.dir)
		}
		if out, err := exec.Command("cp", "-a", template, s.dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
	before := nixtest.Paths(t, s.dir)
	kept := nixtest.Closure(t, s.dir, append([]string{s.newBuild}, s.cur...)...)
	gc := func() *exec.Cmd {
		return nixtest.Hydrafy([]string{"gc", "--store", s.dir, "--keep", s.curRef, "--keep-images", "0"}, "NIX_CONFIG="+nixtest.Config)
	}
	full := nixtest.Timed(t, gc())
	fresh()
	t.Logf("an uninterrupted run takes %v", full)
	nixtest.Crash(t, nixtest.RandomKills(nixtest.Seed(t), full, 10), gc, func(_ nixtest.KillPoint, killed bool) {
		got := nixtest.Verify(t, s.dir)
		if !cmp.Equal(before, got) && !cmp.Equal(kept, got) {
			t.Fatalf("after a kill: %d valid paths, neither the %d before nor the %d kept", len(got), len(before), len(kept))
		}
		if !killed {
			fresh() // completed: the next run starts over
		}
	})
	if out, err := gc().CombinedOutput(); err != nil {
		t.Fatalf("final gc: %v\n%s", err, out)
	}
	if diff := cmp.Diff(kept, nixtest.Verify(t, s.dir)); diff != "" {
		t.Fatalf("after the final run (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, "nix/store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(kept, "/nix/store/"+strings.TrimSuffix(e.Name(), ".lock")) && e.Name() != ".links" {
			t.Errorf("left over in nix/store: %s", e.Name())
		}
	}
}

// TestGCConfigKeepsEveryBranch is `hydrafy gc --config` with the real
// parts: the GitLab emulator, the stand-in runner, real Nix. The store
// holds three releases; main pins B, an old release branch pins A, nothing
// pins C. The collection drains and restarts the runner, deletes only
// what C alone held, and the dry run said so beforehand.
func TestGCConfigKeepsEveryBranch(t *testing.T) {
	repo, rel := pushReleases(t, "2.24.9", "2.25.0", "2.26.0")
	a, b, c := rel[0], rel[1], rel[2]
	e := newE2E(t, repo, "build:\n  image: "+repo+"@"+b.Digest+"\n", seeded(t, repo+"@"+a.Digest, repo+"@"+b.Digest, repo+"@"+c.Digest))
	_, _, err := e.gl.Commits.CreateCommit("group/app", &gitlab.CreateCommitOptions{
		Branch: gitlab.Ptr("release/2.24"), StartBranch: gitlab.Ptr("main"), CommitMessage: gitlab.Ptr("stay on 2.24"),
		Actions: []*gitlab.CommitActionOptions{{Action: gitlab.Ptr(gitlab.FileUpdate), FilePath: gitlab.Ptr(".gitlab-ci.yml"),
			Content: gitlab.Ptr("build:\n  image: " + repo + "@" + a.Digest + "\n")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.GC.KeepImages = 0 // all three were seeded just now
	path := filepath.Join(e.dir, "hydrafy.toml")
	writeTOML(t, path, e.cfg)
	t.Setenv("HYDRAFY_GITLAB_TOKEN", e2eBotToken)

	before := nixtest.Paths(t, e.store)
	gone := slices.DeleteFunc(slices.Clone(c.Paths), func(p string) bool {
		return slices.Contains(a.Paths, p) || slices.Contains(b.Paths, p)
	})
	if len(gone) == 0 {
		t.Fatal("test world: C holds no path of its own")
	}
	code, out, errs := runCmd("gc", "--config", path, "--dry-run")
	if code != 0 || errs != "" || !strings.Contains(out, fmt.Sprintf("would delete %d paths", len(gone))) ||
		!strings.Contains(out, "old images: 1") || !strings.Contains(out, repo+"@"+c.Digest) || strings.Contains(out, a.Digest+"  seeded") {
		t.Errorf("dry run: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	if diff := cmp.Diff(before, nixtest.Paths(t, e.store)); diff != "" {
		t.Fatalf("dry run changed the store (-before +after):\n%s", diff)
	}

	code, out, errs = runCmd("gc", "--config", path)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d paths deleted", len(gone))) {
		t.Fatalf("gc: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	want := slices.DeleteFunc(slices.Clone(before), func(p string) bool { return slices.Contains(gone, p) })
	if diff := cmp.Diff(want, nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("after gc (-want +got):\n%s", diff)
	}
	for _, step := range []string{"pause", "wait-idle", "stop", "gc", "start", "unpause"} {
		if !strings.Contains(out, "  "+step+" ") {
			t.Errorf("the collection did not %s the runner:\n%s", step, out)
		}
	}
	if now, err := standin.ReadStatus(e.status); err != nil || now.PID == e.first.PID || !standin.Alive(now.PID) {
		t.Errorf("runner not restarted: %+v, %v", now, err)
	}
}

// writeTOML writes cfg as a config file.
func writeTOML(t *testing.T, path string, cfg config.Config) {
	t.Helper()
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
