package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

func TestOpsMetrics(t *testing.T) {
	m := NewMetrics()
	m.SetBuildInfo("v1.2.3")
	m.WatchStore(t.TempDir())
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	m.ObserveReport(reconciler.Report{Result: reconciler.ResultFailed, Finished: at, GitLabRequests: 7,
		Missing: []string{"sha256:a", "sha256:b"}, Skipped: []string{"sha256:c"}, Seeded: []string{"sha256:a"}})
	m.ObserveReport(reconciler.Report{Result: reconciler.ResultFailed, Finished: at, Missing: []string{"sha256:b"}})
	if got := testutil.ToFloat64(m.unseeded); got != 1 {
		t.Errorf("unseeded = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.consecutiveFailures); got != 2 {
		t.Errorf("consecutive failures = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.lastReconcileOK); got != 0 {
		t.Errorf("last success = %v before any", got)
	}
	m.ObserveReport(reconciler.Report{Result: reconciler.ResultOK, Finished: at, Missing: []string{"sha256:b"}, Seeded: []string{"sha256:b"}})
	if got := testutil.ToFloat64(m.lastReconcileOK); got != float64(at.Unix()) {
		t.Errorf("last success = %v, want %d", got, at.Unix())
	}
	if testutil.ToFloat64(m.consecutiveFailures) != 0 || testutil.ToFloat64(m.unseeded) != 0 {
		t.Error("a success left failures or unseeded digests counted")
	}
	m.ObserveWatch(WatchResult{}, errors.New("registry down"))
	if got := testutil.ToFloat64(m.lastWatchOK); got != 0 {
		t.Errorf("a failed watch pass set the last success to %v", got)
	}
	m.ObserveWatch(WatchResult{}, nil)
	if got := testutil.ToFloat64(m.lastWatchOK); got < float64(at.Unix()) {
		t.Errorf("last watch success = %v", got)
	}
	for _, s := range []int{200, 200, 404, 429, 503, 0} {
		m.ObserveGitLab(s)
	}
	for code, want := range map[string]float64{"2xx": 2, "4xx": 1, "429": 1, "5xx": 1, "error": 1} {
		if got := testutil.ToFloat64(m.gitlabRequests.WithLabelValues(code)); got != want {
			t.Errorf("gitlab requests %s = %v, want %v", code, got, want)
		}
	}

	out, err := testutil.CollectAndFormat(m.reg, expfmt.TypeTextPlain,
		"hydrafy_build_info", "hydrafy_store_fs_size_bytes", "hydrafy_reconcile_gitlab_requests")
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{`hydrafy_build_info{goversion="go`, `version="v1.2.3"} 1`, "hydrafy_reconcile_gitlab_requests_sum 7",
		"hydrafy_reconcile_gitlab_requests_count 3"} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	for _, name := range []string{"hydrafy_store_fs_size_bytes"} {
		if strings.Contains(text, name+" -1") || !strings.Contains(text, name+" ") {
			t.Errorf("%s not read:\n%s", name, text)
		}
	}
}
