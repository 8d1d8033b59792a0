package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var manual = Reason{Kind: KindManual}

func TestPassSeedsMissingDigests(t *testing.T) {
	r := newRig(t)
	rec := r.reconciler(t)
	rep := rec.Once(context.Background(), manual)

	want := []string{
		"stage nixos/nix@" + dA, "stage nixos/nix@" + dB,
		"preflight", "pause", "wait-idle", "stop",
		"commit " + dA, "commit " + dB,
		"configure", "config /srv/nix-backup nixos/nix@" + dB,
		"start", "running?", "unpause",
		"close " + dA, "close " + dB,
	}
	if diff := cmp.Diff(want, r.calls.list()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if rep.Result != ResultOK || rep.Error != "" {
		t.Errorf("result = %s %q, want ok", rep.Result, rep.Error)
	}
	if diff := cmp.Diff([]string{dA, dB}, rep.Seeded); diff != "" {
		t.Errorf("seeded (-want +got):\n%s", diff)
	}
	if rep.DowntimeSeconds <= 0 {
		t.Errorf("downtime = %v, want > 0", rep.DowntimeSeconds)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	wantSteps := []string{"read-pins", "stage", "stage", "preflight", "pause", "wait-idle", "stop", "commit", "commit", "configure", "start", "running", "unpause"}
	if diff := cmp.Diff(wantSteps, names); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}

	// The state on disk says what was seeded and that nothing is in flight.
	st, err := loadState(r.opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.InFlight != nil {
		t.Errorf("in flight after a finished pass: %+v", st.InFlight)
	}
	if diff := cmp.Diff([]string{dA, dB}, digests(st.Seeded)); diff != "" {
		t.Errorf("persisted seeded (-want +got):\n%s", diff)
	}

	// A second pass finds nothing missing and does not touch the runner.
	r.calls.log = nil
	rep = rec.Once(context.Background(), manual)
	if rep.Result != ResultOK || len(rep.Missing) != 0 {
		t.Errorf("second pass: result %s, missing %v", rep.Result, rep.Missing)
	}
	if diff := cmp.Diff([]string{"configure", "config /srv/nix-backup nixos/nix@" + dB}, r.calls.list()); diff != "" {
		t.Errorf("second pass calls (-want +got):\n%s", diff)
	}
}

func TestPassNoop(t *testing.T) {
	r := newRig(t)
	r.opts.PinImage = false
	rec := r.reconciler(t)
	rec.Once(context.Background(), manual)
	rep := rec.Once(context.Background(), manual)
	if rep.Result != ResultNoop {
		t.Errorf("result = %s, want noop (%+v)", rep.Result, rep)
	}
}

func TestPassReadsOnlyDefaultBranchPins(t *testing.T) {
	r := newRig(t)
	r.repo.set("group/a", ".gitlab-ci.yml", "image: nixos/nix-unstable@sha256:ffff\nimage: nixos/nix:latest\n")
	r.repo.set("group/b", ".gitlab-ci.yml", "no image here\n")
	rec := r.reconciler(t)
	rep := rec.Once(context.Background(), manual)
	if len(rep.Desired) != 0 || slices.Contains(r.calls.list(), "pause") {
		t.Errorf("desired = %v, calls %v: projects pinning no digest must contribute nothing", rep.Desired, r.calls.list())
	}
}

func TestPassProjectReadErrorKeepsLastPins(t *testing.T) {
	r := newRig(t)
	rec := r.reconciler(t)
	rec.Once(context.Background(), manual)
	r.repo.err = map[string]error{"group/b": errors.New("connection refused")}
	rep := rec.Once(context.Background(), manual)
	if rep.Result != ResultFailed || rep.Terminal {
		t.Errorf("result = %s terminal=%v, want a transient failure", rep.Result, rep.Terminal)
	}
	if diff := cmp.Diff([]string{dA, dB}, rep.Desired); diff != "" {
		t.Errorf("desired (-want +got):\n%s", diff)
	}
	if got := rec.Status().Observed.Projects[1]; got.Error == "" || len(got.Pins) != 1 {
		t.Errorf("project b = %+v, want the last pins and the error", got)
	}
}

// TestFailureAfterStopStillRestarts: whatever fails once the runner is
// stopped, it is started and unpaused again and the failure is recorded.
func TestFailureAfterStopStillRestarts(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		fail       failures
		wantSeeded []string
		wantStarts int
	}{
		{"commit fails", failures{commit: map[string]error{dA: boom}}, []string{dB}, 1},
		{"every commit fails", failures{commit: map[string]error{dA: boom, dB: boom}}, nil, 1},
		{"configure fails", failures{runner: map[string][]error{"configure": {boom}}}, []string{dA, dB}, 1},
		{"stop fails, runner still up", failures{runner: map[string][]error{"stop": {boom}}}, nil, 0},
		{"first start fails", failures{runner: map[string][]error{"start": {boom}}}, []string{dA, dB}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rep := failingPass(t, tc.fail)
			if rep.Result != ResultFailed || rep.Error == "" {
				t.Errorf("result = %s %q, want failed", rep.Result, rep.Error)
			}
			if got := r.calls.count("start"); got != tc.wantStarts {
				t.Errorf("start called %d times, want %d (calls %v)", got, tc.wantStarts, r.calls.list())
			}
			if got := r.calls.count("unpause"); got != 1 {
				t.Errorf("unpause called %d times, want 1 (calls %v)", got, r.calls.list())
			}
			if up, _ := r.runner.Running(context.Background()); !up {
				t.Error("runner left down")
			}
			st, err := loadState(r.opts.StateDir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantSeeded, digests(st.Seeded)); diff != "" {
				t.Errorf("persisted seeded (-want +got):\n%s", diff)
			}
			if st.InFlight != nil {
				t.Errorf("in flight left: %+v", st.InFlight)
			}
			if n := len(st.Runs); n == 0 || st.Runs[n-1].Result != ResultFailed {
				t.Errorf("last persisted run does not record the failure: %+v", st.Runs)
			}
		})
	}
}

// TestFailureBeforeStop: a failure before the stop never stops the runner,
// and a paused runner is unpaused.
func TestFailureBeforeStop(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name        string
		fail        failures
		wantPause   int
		wantUnpause int
		terminal    bool
	}{
		{"preflight refuses", failures{runner: map[string][]error{"preflight": {Terminal(boom)}}}, 0, 0, true},
		{"every stage fails", failures{stage: map[string]error{dA: boom, dB: boom}}, 0, 0, false},
		{"drain times out", failures{runner: map[string][]error{"wait-idle": {context.DeadlineExceeded}}}, 1, 1, false},
		{"pause fails", failures{runner: map[string][]error{"pause": {boom}}}, 1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rep := failingPass(t, tc.fail)
			if rep.Result != ResultFailed || rep.Terminal != tc.terminal {
				t.Errorf("result = %s terminal=%v, want failed terminal=%v", rep.Result, rep.Terminal, tc.terminal)
			}
			if got := r.calls.count("stop"); got != 0 {
				t.Errorf("stop called %d times", got)
			}
			if got := r.calls.count("pause"); got != tc.wantPause {
				t.Errorf("pause called %d times, want %d", got, tc.wantPause)
			}
			if got := r.calls.count("unpause"); got != tc.wantUnpause {
				t.Errorf("unpause called %d times, want %d", got, tc.wantUnpause)
			}
			if len(rep.Seeded) != 0 {
				t.Errorf("seeded %v without a commit", rep.Seeded)
			}
		})
	}
}

func TestTerminalStageFailureStallsUntilExplicit(t *testing.T) {
	r := newRig(t)
	r.stager.stageErr = map[string]error{dB: Terminal(errors.New("nar hash mismatch"))}
	rec := r.reconciler(t)
	rep := rec.Once(context.Background(), manual)
	if diff := cmp.Diff([]string{dA}, rep.Seeded); diff != "" {
		t.Fatalf("seeded (-want +got):\n%s", diff)
	}
	rep = rec.Once(context.Background(), Reason{Kind: KindPeriodic})
	if diff := cmp.Diff([]string{dB}, rep.Skipped); diff != "" {
		t.Errorf("periodic pass skipped (-want +got):\n%s", diff)
	}
	r.stager.stageErr = nil
	rep = rec.Once(context.Background(), Reason{Kind: KindWebhook, Detail: "merge"})
	if diff := cmp.Diff([]string{dB}, rep.Seeded); diff != "" {
		t.Errorf("webhook pass seeded (-want +got):\n%s", diff)
	}
	if s := rec.Status().Stalled; len(s) != 0 {
		t.Errorf("stalled after success: %v", s)
	}
}

// digests returns the seeded digests, sorted.
func digests(s []Seeded) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Digest)
	}
	slices.Sort(out)
	return out
}

func TestStateDirIsExclusive(t *testing.T) {
	r := newRig(t)
	rec := r.reconciler(t)
	if _, err := New(r.opts, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second reconciler on the same state dir: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(r.opts, nil)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}

// TestPassSkipsDrainForHeldStores: a staged store whose commit would add
// nothing is recorded as seeded without touching the runner; one that
// would add paths is committed as usual.
func TestPassSkipsDrainForHeldStores(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pending   map[string]int
		wantStops int
	}{
		{"both held", map[string]int{dA: 0, dB: 0}, 0},
		{"one new", map[string]int{dA: 0, dB: 4}, 1},
		{"planning fails", map[string]int{dA: -1, dB: 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.stager.pending = tc.pending
			rec := r.reconciler(t)
			rep := rec.Once(context.Background(), manual)
			if rep.Result != ResultOK {
				t.Errorf("result %s %q", rep.Result, rep.Error)
			}
			if got := r.calls.count("stop"); got != tc.wantStops {
				t.Errorf("stop called %d times, want %d (calls %v)", got, tc.wantStops, r.calls.list())
			}
			if diff := cmp.Diff([]string{dA, dB}, digests(rec.Status().Seeded)); diff != "" {
				t.Errorf("seeded (-want +got):\n%s", diff)
			}
			if !slices.Contains(r.calls.list(), "config /srv/nix-backup nixos/nix@"+dB) {
				t.Errorf("config.toml not pinned: %v", r.calls.list())
			}
		})
	}
}

// TestPassStallsOnTerminalPlan: a staged store whose commit must fail for
// good (a differing schema) stalls its digest without pausing or stopping
// the runner; the periodic pass then skips it.
func TestPassStallsOnTerminalPlan(t *testing.T) {
	r := newRig(t)
	r.stager.pending = map[string]int{dA: -2, dB: 0}
	rec := r.reconciler(t)
	rep := rec.Once(context.Background(), manual)
	if rep.Result != ResultFailed || !rep.Terminal || !strings.Contains(rep.Error, "db schema") {
		t.Errorf("result %s terminal %v %q, want a terminal failure", rep.Result, rep.Terminal, rep.Error)
	}
	for _, call := range []string{"preflight", "pause", "wait-idle", "stop", "start", "unpause"} {
		if n := r.calls.count(call); n != 0 {
			t.Errorf("%s called %d times: %v", call, n, r.calls.list())
		}
	}
	if !slices.Contains(r.calls.list(), "close "+dA) {
		t.Errorf("staged store of %s not discarded: %v", dA, r.calls.list())
	}
	st := rec.Status()
	if diff := cmp.Diff([]string{dB}, digests(st.Seeded)); diff != "" {
		t.Errorf("seeded (-want +got):\n%s", diff)
	}
	if st.Stalled[dA] == "" {
		t.Errorf("%s not stalled: %+v", dA, st.Stalled)
	}
	r.calls.log = nil
	rep = rec.Once(context.Background(), Reason{Kind: KindPeriodic})
	if diff := cmp.Diff([]string{dA}, rep.Skipped); diff != "" {
		t.Errorf("periodic pass skipped (-want +got):\n%s", diff)
	}
	if slices.Contains(r.calls.list(), "stage nixos/nix@"+dA) {
		t.Errorf("periodic pass staged the stalled digest: %v", r.calls.list())
	}
}

// TestPassKeepsAdminPause: a runner paused before the drain (by an
// administrator) is drained, stopped and started, but left paused; so is
// one whose pass was cut short, on recovery.
func TestPassKeepsAdminPause(t *testing.T) {
	r := newRig(t)
	r.runner.pausedBefore = true
	rec := r.reconciler(t)
	rep := rec.Once(context.Background(), manual)
	if rep.Result != ResultOK {
		t.Fatalf("pass: %+v", rep)
	}
	if n := r.calls.count("unpause"); n != 0 || r.calls.count("start") != 1 {
		t.Errorf("calls %v: want a start and no unpause", r.calls.list())
	}
	if st := rec.Status(); st.InFlight != nil {
		t.Errorf("in flight after the pass: %+v", st.InFlight)
	}
	rec.Close()

	// A pass cut short after the stop: the next process starts the runner
	// and leaves it paused.
	r = newRig(t)
	stoppedAt := time.Date(2025, 12, 31, 23, 59, 0, 0, time.UTC) // a minute before the rig's clock
	b, err := json.Marshal(State{InFlight: &InFlight{Run: "x", Paused: true, Stopped: true, WasPaused: true, StoppedAt: stoppedAt}})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeState(r.opts.StateDir, b); err != nil {
		t.Fatal(err)
	}
	r.runner.up = false
	r.runner.pausedBefore = true // GitLab still has it paused
	rec = r.reconciler(t)
	defer rec.Close()
	rep = rec.Once(context.Background(), Reason{Kind: KindStartup})
	if !rep.Recovery || r.calls.count("start") < 1 {
		t.Errorf("recovery did not start the runner: %+v %v", rep, r.calls.list())
	}
	if n := r.calls.count("unpause"); n != 0 {
		t.Errorf("recovery unpaused an administrator's pause: %v", r.calls.list())
	}
	// The report says what the recovery did and the downtime since the
	// killed pass's stop, recorded in state.
	if diff := cmp.Diff([]string{"started", "left paused"}, rep.Restored); diff != "" {
		t.Errorf("restored (-want +got):\n%s", diff)
	}
	if rep.DowntimeSeconds < 60 || rep.Result == ResultNoop {
		t.Errorf("recovery: downtime %.1fs, result %s; want at least the minute since the stop, not noop", rep.DowntimeSeconds, rep.Result)
	}
}
