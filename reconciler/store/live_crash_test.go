package store

import (
	"context"
	"io/fs"
	"slices"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestLiveMergeCrash kills a live merge (a child process) with SIGKILL at
// each step while a Nix process holds the store open: the store verifies,
// no lock file stays held, and a second live merge completes.
func TestLiveMergeCrash(t *testing.T) {
	steps := []string{"shared", "path-locked:2", "locked", "reserved", "renamed:1", "renamed:3", "synced", "begun", "inserted", "committed", "released"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			m := abMerge(t)
			done := nixtest.HoldStore(t, m.live)
			if !runChildMode(t, m.live, m.staged, step, "live") {
				t.Fatalf("merge finished without reaching step %s", step)
			}
			checkNoLocks(t, m.live)
			m.checkInterrupted(t)
			if runChildMode(t, m.live, m.staged, "", "live") {
				t.Fatal("merge killed without a crash point")
			}
			done()
			m.checkMerged(t)
			checkNoLocks(t, m.live)
		})
	}
}

// TestLiveMergeRestoresCollected deletes added paths as a job's garbage
// collection would: one after its rename and before the registration (GC
// deletes an unregistered store path at once), one after the commit with
// real Nix (`nix-store --delete` invalidates and deletes it). The merge
// finds both gone, puts them back and reports them.
func TestLiveMergeRestoresCollected(t *testing.T) {
	m := abMerge(t)
	live, adding := m.live, m.adding()
	// A path nothing else added references: Nix deletes it.
	var leaf string
	refs := nixtest.RefsOf(t, m.staged, adding)
	for _, p := range adding {
		referenced := false
		for _, q := range adding {
			if q != p && slices.Contains(refs[q], p) {
				referenced = true
			}
		}
		if !referenced {
			leaf = p
		}
	}
	var early string
	for _, p := range adding {
		if p != leaf {
			early = p
			break
		}
	}
	setHook(t, func(step string) {
		switch step {
		case "synced":
			if err := removeTree(live + early); err != nil {
				t.Fatal(err)
			}
		case "released":
			hook = nil
			nixtest.Nix(t, nil, "nix-store", "--store", live, "--delete", leaf)
		}
	})
	rep, err := Merge(context.Background(), live, m.staged, MergeOptions{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{early, leaf}; !slices.Equal(sorted(rep.Restored), sorted(want)) {
		t.Errorf("restored %v, want %v", rep.Restored, want)
	}
	m.checkMerged(t)
	checkNoLocks(t, live)
	// Put back with Nix's canonical metadata: dirs 0555, mtime 1.
	for _, p := range rep.Restored {
		nixtest.Walk(t, live+p, func(q, _ string, info fs.FileInfo) error {
			if info.ModTime().Unix() != 1 || (info.IsDir() && info.Mode().Perm() != 0o555) {
				t.Errorf("restored %s: mode %v, mtime %v", q, info.Mode(), info.ModTime())
			}
			return nil
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
