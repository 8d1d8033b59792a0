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
				m := abMerge(t)
				cache := m.addToLive(t, "built-by-a-job")
				if !runChild(t, m.live, m.staged, step) {
					t.Fatalf("merge finished without reaching step %s", step)
				}
				m.checkInterrupted(t)
				if restage {
					m.restage(t)
				}
				if runChild(t, m.live, m.staged, "") {
					t.Fatal("merge killed without a crash point")
				}
				m.checkMerged(t)
				if _, err := os.Stat(m.live + cache); err != nil {
					t.Errorf("cache path lost: %v", err)
				}
			})
		}
	}
}

// TestMergeCrashWhileReplacing interrupts a merge after some renames, then
// kills the next run (freshly staged) while it deletes a leftover.
func TestMergeCrashWhileReplacing(t *testing.T) {
	m := abMerge(t)
	if !runChild(t, m.live, m.staged, "renamed:2") {
		t.Fatal("first merge finished")
	}
	for _, step := range []string{"trashed:1", "renamed:1"} {
		m.restage(t)
		if !runChild(t, m.live, m.staged, step) {
			t.Fatalf("merge finished without reaching %s", step)
		}
		m.checkInterrupted(t)
	}
	m.restage(t)
	rep, err := Merge(context.Background(), m.live, m.staged, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Replaced)+len(rep.Adopted) == 0 {
		t.Errorf("final merge found no leftover to replace: %+v", rep)
	}
	m.checkMerged(t)
	entries, err := os.ReadDir(storePath(m.live))
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
// A live merge runs while a Nix process holds the store, and leaves no
// lock file held after any kill.
func TestMergeKilledAtRandom(t *testing.T) {
	for name, mode := range map[string]string{"drained": "", "live": "live"} {
		t.Run(name, func(t *testing.T) {
			m := bigMerge(t)
			// How long an uninterrupted child takes, on a throwaway copy.
			live, staged := m.copies(t)
			full := nixtest.Timed(t, mergeChildMode(live, staged, mode))
			hold := func() func() { return func() {} }
			if mode == "live" {
				hold = func() func() { return nixtest.HoldStore(t, m.live) }
			}
			done := hold()
			points := nixtest.RandomKills(nixtest.Seed(t), full, 10)
			nixtest.Crash(t, points, func() *exec.Cmd { return mergeChildMode(m.live, m.staged, mode) }, func(_ nixtest.KillPoint, killed bool) {
				checkNoLocks(t, m.live)
				m.checkInterrupted(t)
				if !killed {
					done()
					m.again(t)
					done = hold()
				}
			})
			if runChildMode(t, m.live, m.staged, "", mode) {
				t.Fatal("final merge killed")
			}
			done()
			m.checkMerged(t)
		})
	}
}

// merging is a merge of a staged release into a live store of an older
// one (templates prefix-a and prefix-b), with what Nix says each held
// before the merge.
type merging struct {
	prefix       string
	a, b         func(testing.TB, string)
	live, staged string
	old, image   []string
	// wantRefs are the references of the image's paths: a complete merge
	// leaves them so in the live store.
	wantRefs map[string][]string
}

// abMerge merges release B into release A, both registered by Nix.
func abMerge(t *testing.T) *merging {
	return newMerging(t, "nix", nixStore(releaseA), nixStore(releaseB))
}

// bigMerge merges the bigger release B into the bigger A, built in Go.
func bigMerge(t *testing.T) *merging {
	return newMerging(t, "go-big", goStore(bigA), goStore(bigB))
}

func newMerging(t *testing.T, prefix string, a, b func(testing.TB, string)) *merging {
	t.Helper()
	m := &merging{prefix: prefix, a: a, b: b}
	m.again(t)
	m.old, m.image = nixtest.Paths(t, m.live), nixtest.Paths(t, m.staged)
	m.wantRefs = nixtest.RefsOf(t, m.staged, m.image)
	return m
}

// again starts over on fresh copies of both stores.
func (m *merging) again(t *testing.T) {
	t.Helper()
	m.live, m.staged = m.copies(t)
}

// copies returns fresh copies of both stores, leaving m as it is.
func (m *merging) copies(t *testing.T) (live, staged string) {
	t.Helper()
	return template(t, m.prefix+"-a", m.a), template(t, m.prefix+"-b", m.b)
}

// restage stages the release afresh, as the next `hydrafy seed` run does.
func (m *merging) restage(t *testing.T) {
	t.Helper()
	m.staged = template(t, m.prefix+"-b", m.b)
}

// addToLive adds a path to the live store as a job does, counted among
// the old paths, and returns it.
func (m *merging) addToLive(t *testing.T, name string) string {
	t.Helper()
	p := nixtest.AddResult(t, m.live, name, nixtest.ResultOptions{})
	m.old = nixtest.Paths(t, m.live)
	return p
}

// adding is what the merge adds: the image's paths the live store lacks.
func (m *merging) adding() []string { return nixtest.Minus(m.image, m.old) }

// pathLocks are the live store's lock files of the paths the merge adds.
func (m *merging) pathLocks() []string {
	var locks []string
	for _, p := range m.adding() {
		locks = append(locks, m.live+p+".lock")
	}
	return locks
}

// checkInterrupted asserts that Nix verifies the live store and that its
// valid paths are the old ones, or the old ones and the image's.
func (m *merging) checkInterrupted(t *testing.T) {
	t.Helper()
	got := nixtest.Verify(t, m.live)
	if cmp.Equal(m.old, got) || cmp.Equal(nixtest.Union(m.old, m.image), got) {
		return
	}
	t.Fatalf("after a kill the store holds neither the old paths nor all paths: %d valid, old %d, all %d", len(got), len(m.old), len(nixtest.Union(m.old, m.image)))
}

// checkMerged asserts the complete merge: old ∪ image valid, verified,
// references of the image's paths as the image has them.
func (m *merging) checkMerged(t *testing.T) {
	t.Helper()
	got := nixtest.Verify(t, m.live)
	if diff := cmp.Diff(nixtest.Union(m.old, m.image), got); diff != "" {
		t.Fatalf("valid paths after the merge completed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(m.wantRefs, nixtest.RefsOf(t, m.live, m.image)); diff != "" {
		t.Errorf("references (-image +live):\n%s", diff)
	}
}
