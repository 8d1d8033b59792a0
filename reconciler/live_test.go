package reconciler

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPassLiveMergeKeepsRunner commits live stores without touching the
// runner: no preflight, pause, drain, stop or start; downtime, drain and
// stall are 0 s.
func TestPassLiveMergeKeepsRunner(t *testing.T) {
	r := newRig(t)
	r.opts.LiveMerge = true
	r.stager.live = true
	rep := r.reconciler(t).Once(context.Background(), manual)
	want := []string{
		"stage nixos/nix@" + dA, "stage nixos/nix@" + dB,
		"commit-live " + dA, "commit-live " + dB,
		"configure", "config /srv/nix-backup nixos/nix@" + dB,
		"close " + dA, "close " + dB,
	}
	if diff := cmp.Diff(want, r.calls.list()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if rep.Result != ResultOK || rep.Mode != "live" {
		t.Errorf("result %s %q, mode %q; want ok, live", rep.Result, rep.Error, rep.Mode)
	}
	if rep.DowntimeSeconds != 0 || rep.DrainSeconds != 0 || rep.StallSeconds != 0 {
		t.Errorf("downtime %v, drain %v, stall %v; want 0", rep.DowntimeSeconds, rep.DrainSeconds, rep.StallSeconds)
	}
	if diff := cmp.Diff([]string{dA, dB}, rep.Seeded); diff != "" {
		t.Errorf("seeded (-want +got):\n%s", diff)
	}
}

// TestPassLiveCommitFailure records a failed live commit; the digest stays
// missing and the runner is still not touched.
func TestPassLiveCommitFailure(t *testing.T) {
	r := newRig(t)
	r.opts.LiveMerge = true
	r.stager.live = true
	r.stager.commitErr = map[string]error{dA: errors.New("disk full")}
	rec := r.reconciler(t)
	rep := rec.Once(context.Background(), manual)
	if rep.Result != ResultFailed || r.runner.calls.count("pause") != 0 || r.runner.calls.count("stop") != 0 {
		t.Errorf("result %s, calls %v", rep.Result, r.calls.list())
	}
	if diff := cmp.Diff([]string{dB}, rep.Seeded); diff != "" {
		t.Errorf("seeded (-want +got):\n%s", diff)
	}
}

// TestPassDrainsWithoutLiveCommit drains as before when a staged store
// cannot commit live, or live merges are off; the report says how long
// the drain and the stall took.
func TestPassDrainsWithoutLiveCommit(t *testing.T) {
	for _, c := range []struct {
		name       string
		opt, stage bool
	}{{"store-cannot", true, false}, {"option-off", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.opts.LiveMerge = c.opt
			r.stager.live = c.stage
			rep := r.reconciler(t).Once(context.Background(), manual)
			if rep.Result != ResultOK || rep.Mode != "drain" {
				t.Fatalf("result %s %q, mode %q", rep.Result, rep.Error, rep.Mode)
			}
			for _, m := range []string{"pause", "wait-idle", "stop", "start", "unpause", "commit " + dA} {
				if r.calls.count(m) != 1 {
					t.Errorf("%s called %d times, want once: %v", m, r.calls.count(m), r.calls.list())
				}
			}
			if rep.DrainSeconds <= 0 || rep.StallSeconds <= rep.DrainSeconds || rep.DowntimeSeconds <= 0 {
				t.Errorf("drain %v, stall %v, downtime %v", rep.DrainSeconds, rep.StallSeconds, rep.DowntimeSeconds)
			}
		})
	}
}
