package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

// TestLiveMergeDaemonKeepsRunner runs the daemon with [store] merge =
// "live" on a store that holds release A, while the project pins B and a
// Nix process holds the store open (as a job's Nix does) throughout: the
// start-up pass merges B with the real stager without pausing, draining or
// stopping the stand-in, which keeps running its jobs; /status and
// /metrics show 0 s downtime and drain; Nix verifies A ∪ B.
func TestLiveMergeDaemonKeepsRunner(t *testing.T) {
	repo, rel := pushReleases(t, "2.24.9", "2.25.0")
	a, b := rel[0], rel[1]
	e := newE2E(t, repo, "build:\n  image: "+repo+"@"+b.Digest+"\n", seeded(t, repo+"@"+a.Digest))
	e.cfg.Store.Merge = "live"
	job := nixtest.HoldStore(t, e.store)
	stager := e.stager(t)
	e.serve(t, stager)

	rep := e.seedingRun(t, b.Digest)
	if rep.Result != "ok" || rep.Mode != "live" {
		t.Fatalf("pass: result %s %q, mode %q", rep.Result, rep.Error, rep.Mode)
	}
	if rep.DowntimeSeconds != 0 || rep.DrainSeconds != 0 || rep.StallSeconds != 0 {
		t.Errorf("downtime %v, drain %v, stall %v; want 0 s", rep.DowntimeSeconds, rep.DrainSeconds, rep.StallSeconds)
	}
	for _, s := range rep.Steps {
		switch s.Name {
		case "preflight", "pause", "wait-idle", "stop", "start", "unpause":
			t.Errorf("a live pass ran step %s: %+v", s.Name, rep.Steps)
		}
	}
	now, err := standin.ReadStatus(e.status)
	if err != nil {
		t.Fatal(err)
	}
	if now.PID != e.first.PID || !standin.Alive(now.PID) || now.State != standin.StateRunning || now.JobsAborted != 0 {
		t.Errorf("stand-in disturbed: before pid %d, now %+v", e.first.PID, now)
	}
	if paused, err := e.emu.RunnerPaused(e.runnerID); err != nil || paused {
		t.Errorf("runner paused = %v, %v", paused, err)
	}
	if !nixtest.StoreOpen(t, e.store) {
		t.Error("the job's Nix process let go of the store")
	}
	job()
	want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a.Paths), b.Paths...))))
	if diff := cmp.Diff(want, nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("live store paths (-want +got):\n%s", diff)
	}
	metrics := httpGet(t, e.base+"/metrics")
	for _, w := range []string{
		"hydrafy_runner_last_downtime_seconds 0\n",
		"hydrafy_runner_last_drain_seconds 0\n",
		"hydrafy_runner_last_stall_seconds 0\n",
		`hydrafy_store_commits_total{mode="live"} 1`,
		"hydrafy_store_paths_restored_total 0\n",
	} {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}
