package store

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestMergeCrash kills a merge (a child process) with SIGKILL at each step,
// checks with Nix that the store is sound and holds the old paths, then
// runs the merge again to completion: with the same staged dir (whose
// renamed paths are gone) or with a freshly staged one (the next `hydrafy
// seed` run).
func TestMergeCrash(t *testing.T) {
	steps := []string{"locked", "renamed:1", "renamed:2", "renamed:3", "synced", "begun", "inserted", "committed"}
	for _, step := range steps {
		for _, restage := range []bool{false, true} {
			name := step
			if restage {
				name += "/restaged"
			}
			t.Run(name, func(t *testing.T) {
				live := template(t, "nix-a", nixStore(releaseA))
				staged := template(t, "nix-b", nixStore(releaseB))
				cache := nixtest.AddResult(t, live, "built-by-a-job", nixtest.ResultOptions{})
				old := nixtest.Paths(t, live)
				image := nixtest.Paths(t, staged)
				wantRefs := nixtest.RefsOf(t, staged, image)

				if !runChild(t, live, staged, step) {
					t.Fatalf("merge finished without reaching step %s", step)
				}
				checkInterrupted(t, live, old, image)
				if restage {
					staged = template(t, "nix-b", nixStore(releaseB))
				}
				if runChild(t, live, staged, "") {
					t.Fatal("merge killed without a crash point")
				}
				checkMerged(t, live, old, image, wantRefs)
				if _, err := os.Stat(live + cache); err != nil {
					t.Errorf("cache path lost: %v", err)
				}
			})
		}
	}
}

// TestMergeCrashWhileReplacing interrupts a merge after some renames, then
// kills the next run (freshly staged) while it deletes a leftover.
func TestMergeCrashWhileReplacing(t *testing.T) {
	live := template(t, "nix-a", nixStore(releaseA))
	staged := template(t, "nix-b", nixStore(releaseB))
	old, image := nixtest.Paths(t, live), nixtest.Paths(t, staged)
	wantRefs := nixtest.RefsOf(t, staged, image)
	if !runChild(t, live, staged, "renamed:2") {
		t.Fatal("first merge finished")
	}
	for _, step := range []string{"trashed:1", "renamed:1"} {
		staged = template(t, "nix-b", nixStore(releaseB))
		if !runChild(t, live, staged, step) {
			t.Fatalf("merge finished without reaching %s", step)
		}
		checkInterrupted(t, live, old, image)
	}
	staged = template(t, "nix-b", nixStore(releaseB))
	rep, err := Merge(context.Background(), live, staged, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Replaced)+len(rep.Adopted) == 0 {
		t.Errorf("final merge found no leftover to replace: %+v", rep)
	}
	checkMerged(t, live, old, image, wantRefs)
	entries, err := os.ReadDir(storePath(live))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.Name()) > len(trashPrefix) && e.Name()[:len(trashPrefix)] == trashPrefix {
			t.Errorf("trash left behind: %s", e.Name())
		}
	}
}

// TestMergeKilledAtRandom kills merges of a bigger release at random
// moments and verifies the store after each kill; a run that completes
// starts the next one on fresh copies. The last run completes the merge.
func TestMergeKilledAtRandom(t *testing.T) {
	fresh := func() (live, staged string) {
		return template(t, "go-big-a", goStore(bigA)), template(t, "go-big-b", goStore(bigB))
	}
	live, staged := fresh()
	old, image := nixtest.Paths(t, live), nixtest.Paths(t, staged)
	wantRefs := nixtest.RefsOf(t, staged, image)

	// How long an uninterrupted child takes, on a throwaway copy.
	l2, s2 := fresh()
	full := nixtest.Timed(t, mergeChild(l2, s2))

	points := nixtest.RandomKills(nixtest.Seed(t), full, 10)
	nixtest.Crash(t, points, func() *exec.Cmd { return mergeChild(live, staged) }, func(_ nixtest.KillPoint, killed bool) {
		checkInterrupted(t, live, old, image)
		if !killed {
			live, staged = fresh()
		}
	})
	if runChild(t, live, staged, "") {
		t.Fatal("final merge killed")
	}
	checkMerged(t, live, old, image, wantRefs)
}

// checkInterrupted asserts that Nix verifies live and that its valid
// paths are the old ones, or the old ones and the image's.
func checkInterrupted(t *testing.T, live string, old, image []string) {
	t.Helper()
	got := nixtest.Verify(t, live)
	if cmp.Equal(old, got) || cmp.Equal(nixtest.Union(old, image), got) {
		return
	}
	t.Fatalf("after a kill the store holds neither the old paths nor all paths: %d valid, old %d, all %d", len(got), len(old), len(nixtest.Union(old, image)))
}

// checkMerged asserts the complete merge: old ∪ image valid, verified,
// references of the image's paths as the image has them.
func checkMerged(t *testing.T, live string, old, image []string, wantRefs map[string][]string) {
	t.Helper()
	got := nixtest.Verify(t, live)
	if diff := cmp.Diff(nixtest.Union(old, image), got); diff != "" {
		t.Fatalf("valid paths after the merge completed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRefs, nixtest.RefsOf(t, live, image)); diff != "" {
		t.Errorf("references (-image +live):\n%s", diff)
	}
}
