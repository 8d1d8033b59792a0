package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// TestMetricsLiveAndDrainedPasses: a drained pass sets the last downtime,
// drain and stall; a live pass after it sets them to 0 s and counts its
// restored and raced paths; a pass that commits nothing leaves them.
func TestMetricsLiveAndDrainedPasses(t *testing.T) {
	m := NewMetrics()
	check := func(when string, want ...string) {
		t.Helper()
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for _, w := range want {
			if !strings.Contains(rec.Body.String(), w+"\n") {
				t.Errorf("%s: metrics lack %q", when, w)
			}
		}
	}
	m.ObserveReport(reconciler.Report{
		Result: reconciler.ResultOK, Mode: "drain", DowntimeSeconds: 0.3, DrainSeconds: 40, StallSeconds: 41,
		Steps:   []reconciler.Step{{Name: "stop"}},
		Commits: []reconciler.CommitReport{{PathsAdded: 3}},
	})
	check("after a drained pass", "hydrafy_runner_last_downtime_seconds 0.3", "hydrafy_runner_last_drain_seconds 40",
		"hydrafy_runner_last_stall_seconds 41", `hydrafy_store_commits_total{mode="drain"} 1`, "hydrafy_store_paths_restored_total 0")
	live := []string{"hydrafy_runner_last_downtime_seconds 0", "hydrafy_runner_last_drain_seconds 0", "hydrafy_runner_last_stall_seconds 0",
		`hydrafy_store_commits_total{mode="drain"} 1`, `hydrafy_store_commits_total{mode="live"} 1`,
		"hydrafy_store_paths_restored_total 2", "hydrafy_store_paths_raced_total 1", "hydrafy_runner_downtime_seconds_count 2"}
	m.ObserveReport(reconciler.Report{Result: reconciler.ResultOK, Mode: "live",
		Commits: []reconciler.CommitReport{{PathsAdded: 3, PathsRestored: 2, PathsRaced: 1}}})
	check("after a live pass", live...)
	m.ObserveReport(reconciler.Report{Result: reconciler.ResultNoop})
	check("after a pass that committed nothing", live...)
}
