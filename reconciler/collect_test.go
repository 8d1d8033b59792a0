package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeCollector plans and collects `deletes` paths of 100 bytes each and
// records the digests it was told to keep. Collecting frees the space.
type fakeCollector struct {
	calls   *calls
	deletes int
	space   Space
	planErr error
	kept    [][]string
}

func (f *fakeCollector) report() CollectReport {
	return CollectReport{PathsDeleted: f.deletes, BytesFreed: int64(f.deletes) * 100, Space: f.space}
}

func (f *fakeCollector) Plan(_ context.Context, digests []string) (CollectReport, error) {
	f.calls.add("gc-plan")
	f.kept = append(f.kept, digests)
	return f.report(), f.planErr
}

func (f *fakeCollector) Collect(_ context.Context, digests []string) (CollectReport, error) {
	f.calls.add("gc")
	f.kept = append(f.kept, digests)
	rep := f.report()
	f.space.Free += rep.BytesFreed
	rep.Space = f.space
	f.deletes = 0
	return rep, nil
}

func (f *fakeCollector) Space() (Space, error) { return f.space, nil }

func withCollector(r *rig, deletes int) *fakeCollector {
	c := &fakeCollector{calls: r.calls, deletes: deletes, space: Space{Dir: "/srv/nix-backup", Free: 5000, Total: 10000, MinFree: 1000}}
	r.opts.Collector = c
	return c
}

// TestCollectKeepsEveryBranch: `hydrafy gc` drains the runner, keeps every
// digest pinned on any branch and the default image, and records the
// collection for /status.
func TestCollectKeepsEveryBranch(t *testing.T) {
	r := newRig(t)
	r.repo.set("group/c", ".gitlab-ci.yml@feature/old", "build:\n  image: nixos/nix@"+dC+"\n")
	dDefault := "sha256:" + strings.Repeat("d", 64)
	r.opts.DefaultImage = "nixos/nix@" + dDefault
	c := withCollector(r, 3)
	rec := r.reconciler(t)
	rep := rec.Collect(context.Background(), Reason{Detail: "hydrafy gc"})
	if rep.Result == ResultFailed {
		t.Fatalf("collect failed: %s", rep.Error)
	}
	want := []string{"gc-plan", "preflight", "pause", "wait-idle", "stop", "gc", "configure", "config /srv/nix-backup ", "start", "running?", "unpause"}
	if diff := cmp.Diff(want, r.calls.list()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	wantKept := []string{dA, dB, dC, dDefault}
	for _, k := range c.kept {
		if diff := cmp.Diff(wantKept, k); diff != "" {
			t.Errorf("digests kept (-want +got):\n%s", diff)
		}
	}
	st := rec.Status()
	if st.LastGC == nil || st.LastGC.PathsDeleted != 3 || st.LastGC.BytesFreed != 300 || st.LastGC.At.IsZero() {
		t.Errorf("last gc = %+v", st.LastGC)
	}
	if rep.Collect == nil || rep.Collect.Why != "hydrafy gc" {
		t.Errorf("report's collection = %+v", rep.Collect)
	}
	// Nothing left to delete: no drain at all.
	r.calls.log = nil
	rep = rec.Collect(context.Background(), Reason{})
	for _, call := range r.calls.list() {
		if call == "pause" || call == "stop" || call == "gc" {
			t.Errorf("a collection with nothing to delete called %s", call)
		}
	}
	if rep.Result == ResultFailed {
		t.Errorf("nothing to collect failed: %s", rep.Error)
	}
}

// TestCollectRefusesUnreadBranches: a project whose branches cannot be
// read may pin anything: no collection.
func TestCollectRefusesUnreadBranches(t *testing.T) {
	r := newRig(t)
	c := withCollector(r, 3)
	r.repo.err = map[string]error{"group/b": errors.New("502 Bad Gateway")}
	rep := r.reconciler(t).Collect(context.Background(), Reason{})
	if rep.Result != ResultFailed || !strings.Contains(rep.Error, "not collecting garbage") {
		t.Errorf("result %s %q, want a refusal", rep.Result, rep.Error)
	}
	if r.calls.count("gc") != 0 || r.calls.count("stop") != 0 || c.deletes != 3 {
		t.Errorf("collected anyway: %v", r.calls.list())
	}
}

// TestLowSpaceCollects: a periodic pass that finds the store below
// min_free collects, in the same drain as its commits.
func TestLowSpaceCollects(t *testing.T) {
	r := newRig(t)
	c := withCollector(r, 2)
	c.space.Free = 500
	rep := r.reconciler(t).Once(context.Background(), Reason{Kind: KindPeriodic})
	if rep.Result != ResultOK {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
	calls := r.calls.list()
	idx := func(s string) int {
		for i, c := range calls {
			if c == s {
				return i
			}
		}
		t.Fatalf("no %q in %v", s, calls)
		return -1
	}
	if !(idx("stop") < idx("gc") && idx("gc") < idx("commit "+dA) && r.calls.count("stop") == 1) {
		t.Errorf("want one drain: stop, gc, commits; got %v", calls)
	}
	if rep.Collect == nil || !strings.Contains(rep.Collect.Why, "below min_free") {
		t.Errorf("collection reason: %+v", rep.Collect)
	}
	// With space to spare, no collection is planned.
	r2 := newRig(t)
	withCollector(r2, 2)
	r2.reconciler(t).Once(context.Background(), Reason{Kind: KindPeriodic})
	if r2.calls.count("gc-plan") != 0 {
		t.Errorf("planned a collection with space to spare: %v", r2.calls.list())
	}
}

var errFull = fmt.Errorf("extracting layer: write /srv/nix-backup/.hydrafy-stage-1/x: %w", syscall.ENOSPC)

// TestNoSpaceCollectsAndStagesAgain: staging that runs out of space makes
// the pass collect, then stage again (runner stopped) and commit.
func TestNoSpaceCollectsAndStagesAgain(t *testing.T) {
	r := newRig(t)
	withCollector(r, 4)
	r.stager.stageErrs = map[string][]error{dA: {errFull}}
	rep := r.reconciler(t).Once(context.Background(), manual)
	if rep.Result != ResultOK {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
	want := []string{
		"stage nixos/nix@" + dA, "stage nixos/nix@" + dB, "gc-plan",
		"preflight", "pause", "wait-idle", "stop",
		"gc", "stage nixos/nix@" + dA,
		"commit " + dB, "commit " + dA,
	}
	if diff := cmp.Diff(want, r.calls.list()[:len(want)]); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{dB, dA}, rep.Seeded); diff != "" {
		t.Errorf("seeded (-want +got):\n%s", diff)
	}
}

// TestNoSpaceEvenAfterCollecting fails with one line giving the numbers,
// and the runner comes back.
func TestNoSpaceEvenAfterCollecting(t *testing.T) {
	for _, deletes := range []int{0, 4} {
		t.Run(fmt.Sprint(deletes), func(t *testing.T) {
			r := newRig(t)
			withCollector(r, deletes)
			r.stager.stageErr = map[string]error{dA: errFull}
			rep := r.reconciler(t).Once(context.Background(), manual)
			if rep.Result != ResultFailed {
				t.Fatalf("result %s", rep.Result)
			}
			want := "nixos/nix@" + dA + " does not fit in the store at /srv/nix-backup: "
			if !strings.HasPrefix(rep.Error, want) || strings.Count(rep.Error, "\n") != 0 || !strings.Contains(rep.Error, "min_free is 1000 B") {
				t.Errorf("error = %q, want one line starting %q", rep.Error, want)
			}
			if !strings.Contains(rep.Error, "(staging nixos/nix@"+dA+": extracting layer: ") || !strings.Contains(rep.Error, "no space left on device)") {
				t.Errorf("error = %q, want the staging's own error at the end", rep.Error)
			}
			if deletes > 0 && !strings.Contains(rep.Error, "after collecting 400 B (4 paths)") {
				t.Errorf("error = %q, want the bytes collected", rep.Error)
			}
			if deletes == 0 && r.calls.count("stop") != 1 {
				// dB still commits.
				t.Errorf("calls %v", r.calls.list())
			}
			if !r.runner.up {
				t.Error("runner left down")
			}
			if !contains(rep.Seeded, dB) {
				t.Errorf("the image that fit was not seeded: %v", rep.Seeded)
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
