package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// newTestDaemon builds the daemon of e's config with a lockStager.
func newTestDaemon(t *testing.T, e *e2e) *daemon {
	t.Helper()
	d, err := newDaemon(e.cfg, slog.New(slog.DiscardHandler), &lockStager{dir: e.store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.rec.Close() })
	return d
}

// TestDrainTimeoutNamesJobs: a job that outlasts the drain timeout fails
// the pass with the runner's own timeout error, naming the job; the runner
// is unpaused and was never stopped.
func TestDrainTimeoutNamesJobs(t *testing.T) {
	e := newE2E(t, "nixos/nix", "build:\n  image: nixos/nix@"+e2eDigest+"\n", nil)
	e.cfg.Runner.DrainTimeout = config.Duration(300 * time.Millisecond)
	d := newTestDaemon(t, e)
	job, err := e.emu.StartJob(e.runnerID, "long-build")
	if err != nil {
		t.Fatal(err)
	}

	rep := d.rec.Once(context.Background(), reconciler.Reason{Kind: reconciler.KindManual})
	want := fmt.Sprintf("drain timeout exceeded after 300ms; still running: job %d long-build", job)
	if rep.Result != reconciler.ResultFailed || !strings.Contains(rep.Error, want) {
		t.Errorf("pass: result %s, error %q, want it to contain %q", rep.Result, rep.Error, want)
	}
	if paused, err := e.emu.RunnerPaused(e.runnerID); err != nil || paused {
		t.Errorf("runner paused = %v, %v after the failed drain", paused, err)
	}
	if now, err := standin.ReadStatus(e.status); err != nil || now.PID != e.first.PID || !standin.Alive(now.PID) {
		t.Errorf("stand-in after the failed drain: %+v, %v; first pid %d", now, err, e.first.PID)
	}
}

// TestAdminPauseOutlastsReconcile: an administrator paused the runner in
// GitLab; a reconcile drains, stops, commits and starts it, and leaves it
// paused. Without the pause, the same pass unpauses it.
func TestAdminPauseOutlastsReconcile(t *testing.T) {
	for _, adminPaused := range []bool{true, false} {
		t.Run(fmt.Sprintf("paused=%v", adminPaused), func(t *testing.T) {
			e := newE2E(t, "nixos/nix", "build:\n  image: nixos/nix@"+e2eDigest+"\n", nil)
			if _, _, err := e.gl.Runners.UpdateRunnerDetails(int(e.runnerID), &gitlab.UpdateRunnerDetailsOptions{Paused: gitlab.Ptr(adminPaused)}); err != nil {
				t.Fatal(err)
			}
			d := newTestDaemon(t, e)
			rep := d.rec.Once(context.Background(), reconciler.Reason{Kind: reconciler.KindManual})
			if rep.Result != reconciler.ResultOK || rep.DowntimeSeconds <= 0 {
				t.Fatalf("pass: %+v", rep)
			}
			if paused, err := e.emu.RunnerPaused(e.runnerID); err != nil || paused != adminPaused {
				t.Errorf("runner paused = %v, %v after the reconcile, want %v", paused, err, adminPaused)
			}
			if st := d.rec.Status(); st.InFlight != nil {
				t.Errorf("in flight after the pass: %+v", st.InFlight)
			}
		})
	}
}
