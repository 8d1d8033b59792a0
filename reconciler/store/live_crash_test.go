package store

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestLiveMergeCrash kills a live merge (a child process) with SIGKILL at
// each step while a Nix process holds the store open: the store verifies,
// no lock file stays held, and a second live merge completes.
func TestLiveMergeCrash(t *testing.T) {
	steps := []string{"shared", "path-locked:2", "locked", "reserved", "renamed:1", "renamed:3", "synced", "begun", "inserted", "committed", "released"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			live := template(t, "nix-a", nixStore(releaseA))
			staged := template(t, "nix-b", nixStore(releaseB))
			old, image := nixtest.Paths(t, live), nixtest.Paths(t, staged)
			wantRefs := nixtest.RefsOf(t, staged, image)
			done := nixtest.HoldStore(t, live)
			if !runChildMode(t, live, staged, step, "live") {
				t.Fatalf("merge finished without reaching step %s", step)
			}
			checkNoLocks(t, live)
			checkInterrupted(t, live, old, image)
			if runChildMode(t, live, staged, "", "live") {
				t.Fatal("merge killed without a crash point")
			}
			done()
			checkMerged(t, live, old, image, wantRefs)
			checkNoLocks(t, live)
		})
	}
}

// TestLiveMergeKilledAtRandom kills live merges of a bigger release at
// random moments while a Nix process holds the store, verifying after each
// kill; the last run completes.
func TestLiveMergeKilledAtRandom(t *testing.T) {
	fresh := func() (live, staged string) {
		return template(t, "go-big-a", goStore(bigA)), template(t, "go-big-b", goStore(bigB))
	}
	live, staged := fresh()
	old, image := nixtest.Paths(t, live), nixtest.Paths(t, staged)
	wantRefs := nixtest.RefsOf(t, staged, image)
	l2, s2 := fresh()
	start := time.Now()
	runChildMode(t, l2, s2, "", "live")
	full := time.Since(start)

	done := nixtest.HoldStore(t, live)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	const runs = 8
	kills := 0
	for run := 0; run < runs; run++ {
		cmd := mergeChildMode(live, staged, "live")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Duration(rng.Int64N(int64(full))), func() { cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		checkNoLocks(t, live)
		checkInterrupted(t, live, old, image)
		if err == nil {
			done()
			live, staged = fresh()
			done = nixtest.HoldStore(t, live)
			continue
		}
		kills++
	}
	t.Logf("%d of %d live runs killed at random (a full run takes %v)", kills, runs, full)
	if kills == 0 {
		t.Fatal("no run was killed")
	}
	if runChildMode(t, live, staged, "", "live") {
		t.Fatal("final merge killed")
	}
	done()
	checkMerged(t, live, old, image, wantRefs)
}

// TestLiveMergeRestoresCollected deletes added paths as a job's garbage
// collection would: one after its rename and before the registration (GC
// deletes an unregistered store path at once), one after the commit with
// real Nix (`nix-store --delete` invalidates and deletes it). The merge
// finds both gone, puts them back and reports them.
func TestLiveMergeRestoresCollected(t *testing.T) {
	live := template(t, "nix-a", nixStore(releaseA))
	staged := template(t, "nix-b", nixStore(releaseB))
	old, image := nixtest.Paths(t, live), nixtest.Paths(t, staged)
	wantRefs := nixtest.RefsOf(t, staged, image)
	adding := nixtest.Minus(image, old)
	// A path nothing else added references: Nix deletes it.
	var leaf string
	refs := nixtest.RefsOf(t, staged, adding)
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
	rep, err := Merge(context.Background(), live, staged, MergeOptions{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{early, leaf}; !slices.Equal(sorted(rep.Restored), sorted(want)) {
		t.Errorf("restored %v, want %v", rep.Restored, want)
	}
	checkMerged(t, live, old, image, wantRefs)
	checkNoLocks(t, live)
	// Put back with Nix's canonical metadata: dirs 0555, mtime 1.
	for _, p := range rep.Restored {
		err := filepath.WalkDir(live+p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := os.Lstat(q)
			if err != nil {
				return err
			}
			if info.ModTime().Unix() != 1 || (d.IsDir() && info.Mode().Perm() != 0o555) {
				t.Errorf("restored %s: mode %v, mtime %v", q, info.Mode(), info.ModTime())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
