package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
)

// gcWorld is a live store that has seen two releases and some builds.
type gcWorld struct {
	live string
	// a and b are the releases' paths (they share most of them).
	a, b []string
	// Build results: old ones (30 days) and new ones (now).
	oldBuild  string // old, nothing references it
	oldDep    string // old, referenced by newUser
	newUser   string // new, references oldDep
	newBuild  string // new, nothing references it
	useOnlyA  string // new, references a path only release A has
	adminRoot string // old, listed as an extra root
	onlyA     string // the path of A that useOnlyA references
}

const gcImageA, gcImageB = "nixos/nix@", "nixos/nix@"

// newGCWorld builds the world once per test binary (with real Nix) and
// returns a fresh copy. Release A was seeded 60 days ago, B now.
func newGCWorld(t *testing.T) *gcWorld {
	t.Helper()
	w := &gcWorld{a: releaseA.StorePaths(), b: releaseB.StorePaths()}
	w.onlyA = nixtest.Minus(w.a, w.b)[0]
	build := func(t testing.TB, root string) {
		nixtest.Build(t, root, releaseA)
		staged := filepath.Join(filepath.Dir(root), "gc-world-staged")
		if err := os.MkdirAll(staged, 0o755); err != nil {
			t.Fatal(err)
		}
		nixtest.Build(t, staged, releaseB)
		if _, err := Merge(context.Background(), root, staged, MergeOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := RecordImage(root, gcImageA+digestA, nil, w.a); err != nil {
			t.Fatal(err)
		}
		if err := RecordImage(root, gcImageB+digestB, nil, w.b); err != nil {
			t.Fatal(err)
		}
		lf, err := readLayerFile(root)
		if err != nil {
			t.Fatal(err)
		}
		rec := lf.Images[gcImageA+digestA]
		rec.Recorded = time.Now().Add(-60 * 24 * time.Hour)
		lf.Images[gcImageA+digestA] = rec
		if err := lf.write(root); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-30 * 24 * time.Hour)
		for _, name := range []string{"old-build", "old-dep", "admin-root"} {
			nixtest.SetRegistered(t, root, nixtest.AddBuild(t, root, name), old)
		}
		// Registered an hour apart, newest last.
		now := time.Now()
		nixtest.SetRegistered(t, root, nixtest.AddBuild(t, root, "new-user", storePathOf(root, "old-dep")), now.Add(-3*time.Hour))
		nixtest.SetRegistered(t, root, nixtest.AddBuild(t, root, "new-build"), now.Add(-2*time.Hour))
		nixtest.SetRegistered(t, root, nixtest.AddBuild(t, root, "use-only-a", w.onlyA), now.Add(-time.Hour))
	}
	w.live = template(t, "gc-world", build)
	w.oldBuild = storePathOf(w.live, "old-build")
	w.oldDep = storePathOf(w.live, "old-dep")
	w.newUser = storePathOf(w.live, "new-user")
	w.newBuild = storePathOf(w.live, "new-build")
	w.useOnlyA = storePathOf(w.live, "use-only-a")
	w.adminRoot = storePathOf(w.live, "admin-root")
	return w
}

// storePathOf is the store path nixtest.AddBuild gives name.
func storePathOf(_ string, name string) string { return synth.StorePath("build", name) }

func (w *gcWorld) policy() GCPolicy {
	return GCPolicy{
		Digests:    []string{digestB},
		KeepImages: 7 * 24 * time.Hour,
		KeepBuilds: 14 * 24 * time.Hour,
		Roots:      []string{w.adminRoot},
	}
}

// kept is what the policy keeps, as Nix computes the closure.
func (w *gcWorld) kept(t *testing.T) []string {
	return nixtest.Closure(t, w.live, append([]string{w.newUser, w.newBuild, w.useOnlyA, w.adminRoot}, w.b...)...)
}

// TestGCKeepsPolicy collects the world with the default policy: Nix
// verifies the store and its paths are exactly the closure of what the
// policy keeps; what went is reported as release A's and old builds.
func TestGCKeepsPolicy(t *testing.T) {
	w := newGCWorld(t)
	before := nixtest.Paths(t, w.live)
	want := w.kept(t)
	if !contains(want, w.oldDep) || !contains(want, w.onlyA) {
		t.Fatalf("test world: old-dep and A's path must be kept through references")
	}
	rep, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy()})
	if err != nil {
		t.Fatal(err)
	}
	got := nixtest.Verify(t, w.live)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("valid paths after GC (-want +got):\n%s", diff)
	}
	gone := nixtest.Minus(before, want)
	var reported []string
	for _, img := range rep.Images {
		if img.Name != gcImageA+digestA {
			t.Errorf("deleted image %s, want only release A", img.Name)
		}
		reported = append(reported, img.Paths...)
	}
	for _, b := range rep.Builds {
		reported = append(reported, b.Path)
	}
	sort.Strings(reported)
	if diff := cmp.Diff(gone, reported); diff != "" {
		t.Errorf("reported deletions (-deleted +reported):\n%s", diff)
	}
	if rep.PathsDeleted != len(gone) || rep.PathsKept != len(want) {
		t.Errorf("report counts %d deleted, %d kept; want %d, %d", rep.PathsDeleted, rep.PathsKept, len(gone), len(want))
	}
	if wantBuilds := []string{w.oldBuild}; !cmp.Equal(wantBuilds, buildPaths(rep.Builds)) {
		t.Errorf("builds deleted %v, want %v", buildPaths(rep.Builds), wantBuilds)
	}
	for _, p := range gone {
		if _, err := os.Lstat(w.live + p); err == nil {
			t.Errorf("%s deleted from the db but still on disk", p)
		}
	}
	lf, err := readLayerFile(w.live)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lf.Images[gcImageA+digestA]; ok {
		t.Error("release A is still recorded as seeded")
	}
	if _, ok := lf.Images[gcImageB+digestB]; !ok {
		t.Error("release B is no longer recorded as seeded")
	}
	// A second run has nothing left to do.
	again, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy()})
	if err != nil {
		t.Fatal(err)
	}
	if again.PathsDeleted != 0 || len(again.Leftovers) != 0 {
		t.Errorf("second run deleted %d paths and %d leftovers", again.PathsDeleted, len(again.Leftovers))
	}
}

// TestGCDryRun changes nothing and reports what the real run deletes.
func TestGCDryRun(t *testing.T) {
	w := newGCWorld(t)
	snap := nixtest.Snapshot(t, w.live)
	dry, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	after := nixtest.Snapshot(t, w.live)
	for _, f := range []string{"nix/var/nix/db/db.sqlite-shm", "nix/var/nix/db/db.sqlite-wal"} {
		if _, ok := snap[f]; !ok {
			delete(after, f) // every WAL reader's files
		}
	}
	if diff := cmp.Diff(snap, after); diff != "" {
		t.Errorf("the dry run changed the store (-before +after):\n%s", diff)
	}
	if fi, err := os.Stat(dbFile(w.live) + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("the dry run wrote %d bytes to the -wal", fi.Size())
	}
	real, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(real.Images, dry.Images); diff != "" {
		t.Errorf("images (-real +dry):\n%s", diff)
	}
	if diff := cmp.Diff(real.Builds, dry.Builds); diff != "" {
		t.Errorf("builds (-real +dry):\n%s", diff)
	}
	if real.BytesFreed != dry.BytesFreed || dry.BytesFreed == 0 {
		t.Errorf("bytes freed: dry %d, real %d", dry.BytesFreed, real.BytesFreed)
	}
}

// TestGCMaxSize deletes kept build results, oldest first, until the store
// fits, and never what a pinned image or root needs.
func TestGCMaxSize(t *testing.T) {
	w := newGCWorld(t)
	base := nixtest.Closure(t, w.live, append([]string{w.adminRoot}, w.b...)...)
	newest := nixtest.Closure(t, w.live, w.useOnlyA)
	// Room for the base and the newest build only (use-only-a was
	// registered last).
	limit := narSize(t, w.live, nixtest.Union(base, newest))
	pol := w.policy()
	pol.MaxSize = limit
	rep, err := GC(context.Background(), w.live, GCOptions{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	got := nixtest.Verify(t, w.live)
	if diff := cmp.Diff(nixtest.Union(base, newest), got); diff != "" {
		t.Fatalf("valid paths (-want +got):\n%s", diff)
	}
	if rep.BytesKept > limit || rep.OverMaxSize {
		t.Errorf("kept %d bytes over max %d (over: %v)", rep.BytesKept, limit, rep.OverMaxSize)
	}

	// Below what must be kept: it keeps that and says so.
	pol.MaxSize = 1
	rep, err = GC(context.Background(), w.live, GCOptions{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OverMaxSize {
		t.Error("max_size 1 reached?")
	}
	if diff := cmp.Diff(base, nixtest.Verify(t, w.live)); diff != "" {
		t.Fatalf("valid paths (-want +got):\n%s", diff)
	}
}

// TestGCRefusesUnknownDigest: a digest to keep that no seeded image has is
// a typo, not a reason to delete the image meant.
func TestGCRefusesUnknownDigest(t *testing.T) {
	w := newGCWorld(t)
	snap := nixtest.Snapshot(t, w.live)
	pol := w.policy()
	pol.Digests, pol.Strict = []string{"sha256:" + strings.Repeat("c", 64)}, true
	_, err := GC(context.Background(), w.live, GCOptions{Policy: pol})
	if err == nil || !strings.Contains(err.Error(), "was seeded") {
		t.Fatalf("err = %v, want an unknown digest error", err)
	}
	nixtest.Unchanged(t, "the store", snap, w.live)
	for _, root := range []string{"nix/store/x", "/nix/store/short", "/etc/passwd"} {
		pol := w.policy()
		pol.Roots = []string{root}
		if _, err := GC(context.Background(), w.live, GCOptions{Policy: pol}); err == nil {
			t.Errorf("root %q accepted", root)
		}
	}
	nixtest.Unchanged(t, "the store", snap, w.live)
}

// TestGCCrash kills a collection (a child process) at each step, checks
// with Nix that the store verifies and holds the old paths or exactly the
// kept ones, then runs it again to completion.
func TestGCCrash(t *testing.T) {
	for _, step := range []string{"gc-locked", "gc-begun", "gc-deleted", "gc-committed", "gc-removed", "gc-swept"} {
		t.Run(step, func(t *testing.T) {
			w := newGCWorld(t)
			before := nixtest.Paths(t, w.live)
			want := w.kept(t)
			if !runGCChild(t, w, step) {
				t.Fatalf("collection finished without reaching %s", step)
			}
			got := nixtest.Verify(t, w.live)
			if !cmp.Equal(before, got) && !cmp.Equal(want, got) {
				t.Fatalf("after a kill at %s: %d valid paths, neither the %d before nor the %d kept", step, len(got), len(before), len(want))
			}
			if runGCChild(t, w, "") {
				t.Fatal("collection killed without a crash point")
			}
			if diff := cmp.Diff(want, nixtest.Verify(t, w.live)); diff != "" {
				t.Fatalf("valid paths after the rerun (-want +got):\n%s", diff)
			}
			assertNoLeftovers(t, w.live)
		})
	}
}

// assertNoLeftovers fails on entries of nix/store that no valid path owns.
func assertNoLeftovers(t *testing.T, live string) {
	t.Helper()
	valid := map[string]bool{}
	for _, p := range nixtest.Paths(t, live) {
		valid[p] = true
	}
	entries, err := os.ReadDir(storePath(live))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ".links" {
			continue
		}
		if !valid["/nix/store/"+strings.TrimSuffix(e.Name(), ".lock")] {
			t.Errorf("left over in nix/store: %s", e.Name())
		}
	}
}

func buildPaths(bs []GCBuild) []string {
	out := []string{}
	for _, b := range bs {
		out = append(out, b.Path)
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// narSize sums the NAR sizes Nix reports for paths.
func narSize(t *testing.T, root string, paths []string) int64 {
	t.Helper()
	out := nixtest.Nix(t, nil, "nix", append([]string{"path-info", "--store", root, "--json"}, paths...)...)
	var infos []struct {
		NarSize int64 `json:"narSize"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, in := range infos {
		n += in.NarSize
	}
	return n
}

// runGCChild collects w's store with w.policy() in a child process killed
// at crash ("step" or "step:n"; empty: never). It returns whether it was
// killed.
func runGCChild(t *testing.T, w *gcWorld, crash string) (killed bool) {
	t.Helper()
	pol, err := json.Marshal(w.policy())
	if err != nil {
		t.Fatal(err)
	}
	return nixtest.Kill(t, nixtest.Command("gc", envGCLive+"="+w.live, envGCPolicy+"="+string(pol)), nixtest.At(crash))
}

// TestRootsSurviveJobGC runs Nix's collector as a job runs it (a state dir
// of its own that sees only hydrafy's roots): after a hydrafy collection,
// and after WriteRoots on a store nothing collected, it deletes nothing.
// Without the roots, the same collector deletes the store.
func TestRootsSurviveJobGC(t *testing.T) {
	t.Run("after GC", func(t *testing.T) {
		w := newGCWorld(t)
		rep, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy()})
		if err != nil {
			t.Fatal(err)
		}
		kept := nixtest.Paths(t, w.live)
		if rep.Roots == 0 {
			t.Fatal("no roots written")
		}
		nixtest.JobGC(t, w.live, filepath.Join(w.live, RootsDir))
		if diff := cmp.Diff(kept, nixtest.Verify(t, w.live)); diff != "" {
			t.Fatalf("a job's GC deleted (-kept +left):\n%s", diff)
		}
	})
	t.Run("after WriteRoots", func(t *testing.T) {
		w := newGCWorld(t)
		all := nixtest.Paths(t, w.live)
		n, err := WriteRoots(context.Background(), w.live)
		if err != nil {
			t.Fatal(err)
		}
		roots, err := ReadRoots(w.live)
		if err != nil {
			t.Fatal(err)
		}
		if len(roots) != n {
			t.Errorf("WriteRoots said %d roots, the dir holds %d", n, len(roots))
		}
		// One root per image top and build result top: release B's top,
		// release A's top, and the builds nothing references.
		wantBuilds := []string{w.adminRoot, w.newBuild, w.newUser, w.oldBuild, w.useOnlyA}
		for _, b := range wantBuilds {
			if !contains(roots, b) {
				t.Errorf("no root for build result %s", b)
			}
		}
		if contains(roots, w.oldDep) {
			t.Errorf("root for %s, which new-user already keeps", w.oldDep)
		}
		nixtest.JobGC(t, w.live, filepath.Join(w.live, RootsDir))
		if diff := cmp.Diff(all, nixtest.Verify(t, w.live)); diff != "" {
			t.Fatalf("a job's GC deleted (-all +left):\n%s", diff)
		}
		// Stale roots go: after a collection, no root names a deleted path.
		if _, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy()}); err != nil {
			t.Fatal(err)
		}
		roots, err = ReadRoots(w.live)
		if err != nil {
			t.Fatal(err)
		}
		valid := nixtest.Paths(t, w.live)
		for _, r := range roots {
			if !contains(valid, r) {
				t.Errorf("root %s names a deleted path", r)
			}
		}
	})
	t.Run("without roots", func(t *testing.T) {
		w := newGCWorld(t)
		if _, err := WriteRoots(context.Background(), w.live); err != nil {
			t.Fatal(err)
		}
		before := nixtest.Paths(t, w.live)
		nixtest.JobGC(t, w.live, "")
		if after := nixtest.Paths(t, w.live); len(after) >= len(before) {
			t.Fatalf("a job's GC without roots kept %d of %d paths: the test cannot tell roots from none", len(after), len(before))
		}
	})
}

// TestGCKeepsAdminRoots: a root an administrator left in the store's
// gcroots keeps its path, directly or through one more link as
// Nix follows it; hydrafy's own roots keep nothing.
func TestGCKeepsAdminRoots(t *testing.T) {
	for _, tc := range []struct {
		name string
		link func(t *testing.T, w *gcWorld) // leaves a root of w.oldBuild
	}{
		{"direct gcroot", func(t *testing.T, w *gcWorld) {
			symlink(t, w.oldBuild+"/out", filepath.Join(w.live, "nix/var/nix/gcroots/admin/keep-me"))
		}},
		{"indirect gcroot", func(t *testing.T, w *gcWorld) {
			result := filepath.Join(t.TempDir(), "result")
			symlink(t, w.oldBuild, result)
			symlink(t, result, filepath.Join(w.live, "nix/var/nix/gcroots/auto/abc"))
		}},
		{"indirect gcroot through the store's own /nix/var", func(t *testing.T, w *gcWorld) {
			symlink(t, w.oldBuild, filepath.Join(w.live, "nix/var/nix/links/ci"))
			symlink(t, "/nix/var/nix/links/ci", filepath.Join(w.live, "nix/var/nix/gcroots/ci"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newGCWorld(t)
			if _, err := WriteRoots(context.Background(), w.live); err != nil {
				t.Fatal(err)
			}
			tc.link(t, w)
			if _, err := GC(context.Background(), w.live, GCOptions{Policy: w.policy()}); err != nil {
				t.Fatal(err)
			}
			want := nixtest.Union(w.kept(t), []string{w.oldBuild})
			if diff := cmp.Diff(want, nixtest.Verify(t, w.live)); diff != "" {
				t.Fatalf("valid paths (-want +got):\n%s", diff)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
