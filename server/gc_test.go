package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Branches makes the fake repo a BranchLister: every file is on "main".
func (r *repo) Branches(context.Context, string) ([]string, error) { return []string{"main"}, nil }

// collector deletes 7 paths of 1 KiB once.
type collector struct{ done bool }

func (c *collector) Plan(context.Context, []string) (reconciler.CollectReport, error) {
	if c.done {
		return reconciler.CollectReport{DryRun: true}, nil
	}
	return reconciler.CollectReport{DryRun: true, PathsDeleted: 7, BytesFreed: 7168}, nil
}

func (c *collector) Collect(context.Context, []string) (reconciler.CollectReport, error) {
	c.done = true
	return reconciler.CollectReport{PathsDeleted: 7, BytesFreed: 7168, PathsKept: 3, BytesKept: 3072,
		Space: reconciler.Space{Dir: "/srv/nix-backup", Free: 1 << 30, Total: 4 << 30}}, nil
}

func (c *collector) Space() (reconciler.Space, error) {
	return reconciler.Space{Dir: "/srv/nix-backup", Free: 1 << 30, Total: 4 << 30}, nil
}

// TestGCFeedsStatusAndMetrics: a collection in a pass shows in /status
// (last_gc) and in the metrics; the maintenance window is a cron entry.
func TestGCFeedsStatusAndMetrics(t *testing.T) {
	metrics := NewMetrics()
	rn := &runner{}
	rec, err := reconciler.New(reconciler.Options{
		Image:     "nixos/nix",
		Projects:  []reconciler.Project{{Path: "group/app", Files: []string{".gitlab-ci.yml"}}},
		StoreDir:  t.TempDir(),
		StateDir:  t.TempDir(),
		Repo:      &repo{files: map[string]string{"group/app:.gitlab-ci.yml": "build:\n  image: nixos/nix@" + digestA + "\n"}},
		Find:      findDigests,
		Stager:    stager(nil),
		Runner:    rn,
		Collector: &collector{},
		OnReport:  metrics.ObserveReport,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	opts := Options{WebhookSecret: testSecret, Reconciler: rec, Metrics: metrics, GCSchedule: "0 3 * * 0"}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.cron.Entries()); n != 1 {
		t.Errorf("cron has %d entries, want the maintenance window", n)
	}
	rep := rec.Collect(context.Background(), reconciler.Reason{Detail: "maintenance window"})
	if rep.Result == reconciler.ResultFailed {
		t.Fatalf("collect: %s", rep.Error)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	var st statusDoc
	if err := json.Unmarshal([]byte(get(t, ts.URL+"/status", 200)), &st); err != nil {
		t.Fatal(err)
	}
	if st.LastGC == nil || st.LastGC.PathsDeleted != 7 || st.LastGC.BytesFreed != 7168 || st.LastGC.At.IsZero() || st.LastGC.Why != "maintenance window" {
		t.Errorf("status last_gc = %+v", st.LastGC)
	}
	m := get(t, ts.URL+"/metrics", 200)
	for _, want := range []string{"hydrafy_gc_bytes_freed_total 7168", "hydrafy_gc_paths_deleted_total 7", "hydrafy_store_paths 3"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(m, "hydrafy_gc_last_timestamp_seconds 1.") {
		t.Errorf("metrics lack the time of the last collection")
	}

	opts.GCSchedule = "every sunday"
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "gc.schedule") {
		t.Errorf("bad gc.schedule: err = %v", err)
	}
}
