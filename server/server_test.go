package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

func resyncReq(t *testing.T, url, auth string) (int, []byte) {
	t.Helper()
	resp, body := nixtest.Do(t, http.MethodPost, url, auth)
	var b json.RawMessage
	_ = json.Unmarshal([]byte(body), &b)
	return resp.StatusCode, b
}

func TestResyncAuth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string
		auth       string
		want       int
	}{
		{"no header", testResync, "", 401},
		{"wrong token", testResync, "Bearer nope", 401},
		{"basic scheme", testResync, "Basic " + testResync, 401},
		{"bare token", testResync, testResync, 401},
		{"webhook secret is not the resync token", testResync, "Bearer " + testSecret, 401},
		{"empty configured token refuses all", "", "Bearer ", 401},
		{"right token", testResync, "Bearer " + testResync, 202},
		{"scheme is case-insensitive", testResync, "bearer " + testResync, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, stager(nil))
			r.opts.ResyncToken = configSecret(tc.configured)
			ts := httptest.NewServer(r.server(t).Handler())
			defer ts.Close()
			code, body := resyncReq(t, ts.URL+"/resync", tc.auth)
			if code != tc.want {
				t.Errorf("status %d, want %d: %s", code, tc.want, body)
			}
			wantTriggers := int32(0)
			if tc.want == 202 {
				wantTriggers = 1
				var out struct {
					RunID string `json:"run_id"`
				}
				if err := json.Unmarshal(body, &out); err != nil || out.RunID == "" {
					t.Errorf("no run id in %s", body)
				}
			}
			if got := r.rec.n.Load(); got != wantTriggers {
				t.Errorf("%d triggers, want %d", got, wantTriggers)
			}
		})
	}
}

// serve runs the whole server on a loopback listener until the test ends.
func serve(t *testing.T, s *Server) (url string, stop func() error) {
	t.Helper()
	return serveTB(t, s)
}

func serveTB(t testing.TB, s *Server) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once bool
	var serr error
	stop = func() error {
		if !once {
			once = true
			cancel()
			serr = <-done
		}
		return serr
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

func TestResyncWaitReturnsReportAndStatus(t *testing.T) {
	r := newRig(t, stager(nil))
	url, _ := serve(t, r.server(t))
	code, body := resyncReq(t, url+"/resync?wait=1", "Bearer "+testResync)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var rep reconciler.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	// The start-up pass seeds the digest; the resync pass is either that
	// pass (joined before it started) or a later one that finds it seeded.
	if rep.Result != reconciler.ResultOK && rep.Result != reconciler.ResultNoop {
		t.Errorf("report result %s: %s", rep.Result, body)
	}
	if diff := cmp.Diff([]string{digestA}, rep.Desired); diff != "" {
		t.Errorf("desired (-want +got):\n%s", diff)
	}

	var st statusDoc
	if err := json.Unmarshal([]byte(get(t, url+"/status", 200)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Seeded) != 1 || st.Seeded[0].Digest != digestA {
		t.Errorf("status seeded = %+v", st.Seeded)
	}
	if st.Last == nil || len(st.Last.Steps) == 0 {
		t.Errorf("status has no last run with steps: %+v", st.Last)
	}
	if len(st.Projects) != 1 || len(st.Projects[0].Pins) != 1 || st.Projects[0].Pins[0].Digest != digestA {
		t.Errorf("status projects = %+v", st.Projects)
	}

	if st.StoreFreeBytes == nil || *st.StoreFreeBytes <= 0 {
		t.Errorf("status store_free_bytes = %v, want the store filesystem's free bytes", st.StoreFreeBytes)
	}

	m := get(t, url+"/metrics", 200)
	for _, want := range []string{`hydrafy_reconciles_total{result="ok"} 1`, "hydrafy_runner_downtime_seconds_count 1", "hydrafy_store_paths 10", "hydrafy_store_bytes_added_total 2048"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var free float64
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, "hydrafy_store_free_bytes "); ok {
			free, _ = strconv.ParseFloat(v, 64)
		}
	}
	if free <= 0 {
		t.Errorf("metric hydrafy_store_free_bytes = %v, want the store filesystem's free bytes", free)
	}
}

func TestShutdownWaitsForRunningReconcile(t *testing.T) {
	committing, release := make(chan struct{}), make(chan struct{})
	r := newRig(t, stager(func() { close(committing); <-release }))
	_, stop := serve(t, r.server(t))
	<-committing // the start-up pass has stopped the runner and commits
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned during a commit: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	calls := r.runner.list()
	if len(calls) < 2 || calls[len(calls)-2] != "start" || calls[len(calls)-1] != "unpause" {
		t.Errorf("runner calls %v: want the pass to end with start, unpause", calls)
	}
}

func TestReadyz(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name        string
		checks      []Check
		want        int
		wantReasons []string
	}{
		{"all fine", []Check{DirCheck(dir), {Name: "gitlab", Check: func(context.Context) error { return nil }}}, 200, nil},
		{"gitlab down", []Check{DirCheck(dir), {Name: "gitlab", Check: func(context.Context) error { return errors.New("401 Unauthorized") }}},
			503, []string{"gitlab: 401 Unauthorized"}},
		{"store dir missing", []Check{DirCheck(filepath.Join(dir, "nope"))}, 503, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, stager(nil))
			r.opts.Checks = tc.checks
			ts := httptest.NewServer(r.server(t).Handler())
			defer ts.Close()
			get(t, ts.URL+"/healthz", 200)
			var out struct {
				Reasons []string `json:"reasons"`
			}
			if err := json.Unmarshal([]byte(get(t, ts.URL+"/readyz", tc.want)), &out); err != nil {
				t.Fatal(err)
			}
			if tc.wantReasons != nil {
				if diff := cmp.Diff(tc.wantReasons, out.Reasons); diff != "" {
					t.Errorf("reasons (-want +got):\n%s", diff)
				}
			}
			if tc.want == 503 && len(out.Reasons) == 0 {
				t.Error("503 without reasons")
			}
		})
	}
}

type watcher struct {
	res WatchResult
	err error
}

func (w watcher) Pass(context.Context) (WatchResult, error) { return w.res, w.err }

func TestWatchPassFeedsStatusAndMetrics(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.Watcher = watcher{res: WatchResult{Digest: digestA, Changed: true, MergeRequests: []MergeRequest{
		{Project: "group/app", IID: 3, URL: "https://gitlab.example/group/app/-/merge_requests/3", Action: "opened"},
	}}}
	r.opts.WatchSchedule = "@every 1h"
	s := r.server(t)
	s.RunWatch(context.Background())
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	var st statusDoc
	if err := json.Unmarshal([]byte(get(t, ts.URL+"/status", 200)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Tracked != digestA || st.Projects[0].MergeRequest == nil || st.Projects[0].MergeRequest.IID != 3 {
		t.Errorf("status = %+v", st)
	}
	m := get(t, ts.URL+"/metrics", 200)
	for _, want := range []string{`hydrafy_watch_passes_total{result="ok"} 1`, "hydrafy_digest_changes_total 1", `hydrafy_merge_requests_total{action="opened"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestResyncRunsWatchPass: POST /resync?watch=1 runs the watch pass now
// and answers with its result; /status then lists each project's merge
// request with the last merged one.
func TestResyncRunsWatchPass(t *testing.T) {
	r := newRig(t, stager(nil))
	merged := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	r.opts.Watcher = watcher{res: WatchResult{Digest: digestA, MergeRequests: []MergeRequest{
		{Project: "group/app", Action: "up-to-date", LastMerged: &MergedRequest{IID: 4, URL: "https://gitlab.example/group/app/-/merge_requests/4", MergedAt: merged}},
	}}}
	s := r.server(t)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if code, _ := resyncReq(t, ts.URL+"/resync?watch=1", "Bearer wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	code, body := resyncReq(t, ts.URL+"/resync?watch=1", "Bearer "+testResync)
	var ws watchStatus
	if err := json.Unmarshal(body, &ws); err != nil || code != 200 || ws.Result == nil || ws.Result.Digest != digestA {
		t.Fatalf("POST /resync?watch=1: %d %s (%v)", code, body, err)
	}
	var st statusDoc
	doc := get(t, ts.URL+"/status", 200)
	if err := json.Unmarshal([]byte(doc), &st); err != nil {
		t.Fatal(err)
	}
	mr := st.Projects[0].MergeRequest
	if mr == nil || mr.LastMerged == nil || mr.LastMerged.IID != 4 || !mr.LastMerged.MergedAt.Equal(merged) {
		t.Errorf("status project %+v", st.Projects[0])
	}
	// An up-to-date project has no open merge request to name.
	if strings.Contains(doc, `"iid":0`) {
		t.Errorf("/status names merge request 0: %s", doc)
	}
}

// TestMergeWebhookShowsLastMerged: the merge webhook of the bot's merge
// request shows in /status at once, before the next watch pass.
func TestMergeWebhookShowsLastMerged(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.Watcher = watcher{res: WatchResult{Digest: digestA, MergeRequests: []MergeRequest{
		{Project: "group/app", IID: 7, URL: "https://gitlab.example/group/app/-/merge_requests/7", Action: "opened"},
	}}}
	s := r.server(t)
	s.RunWatch(context.Background())
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if code, _ := hook("Merge Request Hook", mrPayload("group/app", "merge", "main")).send(t, ts.URL); code != 202 {
		t.Fatalf("merge webhook: %d", code)
	}
	var st statusDoc
	if err := json.Unmarshal([]byte(get(t, ts.URL+"/status", 200)), &st); err != nil {
		t.Fatal(err)
	}
	mr := st.Projects[0].MergeRequest
	if mr == nil || mr.Action != "merged" || mr.LastMerged == nil || mr.LastMerged.IID != 7 || mr.LastMerged.URL != "https://gitlab.example/group/app/-/merge_requests/7" {
		t.Errorf("status project %+v", st.Projects[0])
	}
}
