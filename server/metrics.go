package server

import (
	"math"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Metrics holds hydrafy's Prometheus metrics on a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	watchPasses        *prometheus.CounterVec
	digestChanges      prometheus.Counter
	mergeRequests      *prometheus.CounterVec
	reconciles         *prometheus.CounterVec
	reconcileDuration  prometheus.Histogram
	downtime           prometheus.Histogram
	lastDowntime       prometheus.Gauge
	drain              prometheus.Histogram
	lastDrain          prometheus.Gauge
	lastStall          prometheus.Gauge
	commits            *prometheus.CounterVec
	storePathsRestored prometheus.Counter
	storePathsRaced    prometheus.Counter
	storePaths         prometheus.Gauge
	storeBytes         prometheus.Gauge
	storePathsAdded    prometheus.Counter
	storeBytesAdded    prometheus.Counter
	webhooks           *prometheus.CounterVec
	// storeFree reads the live store's free bytes for each scrape.
	storeFree atomic.Pointer[func() (int64, bool)]
	opsMetrics
	gcBytesFreed   prometheus.Counter
	gcPathsDeleted prometheus.Counter
	gcLast         prometheus.Gauge
}

// NewMetrics registers every metric on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		watchPasses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_watch_passes_total", Help: "Watch and propose passes by result.",
		}, []string{"result"}),
		digestChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_digest_changes_total", Help: "Times the tracked tag's digest changed.",
		}),
		mergeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_merge_requests_total", Help: "Merge requests opened or updated.",
		}, []string{"action"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_reconciles_total", Help: "Reconcile passes by result.",
		}, []string{"result"}),
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydrafy_reconcile_duration_seconds", Help: "Duration of reconcile passes.",
			// Written out: ExponentialBuckets' products print as 0.30000000000000004.
			Buckets: []float64{0.1, 0.3, 1, 3, 10, 30, 60, 180, 600, 1800, 3600},
		}),
		downtime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydrafy_runner_downtime_seconds", Help: "Time between the runner's stop and its start in a pass.",
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
		lastDowntime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_runner_last_downtime_seconds", Help: "Runner downtime of the last pass that stopped it.",
		}),
		drain: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydrafy_runner_drain_seconds", Help: "Time from the runner's pause until it ran no jobs, per pass that committed (0 for live merges).",
			Buckets: []float64{0.25, 1, 10, 60, 300, 1800, 3600, 10800},
		}),
		lastDrain: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_runner_last_drain_seconds", Help: "Drain time of the last pass that committed (0 for a live merge).",
		}),
		lastStall: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_runner_last_stall_seconds", Help: "Time the runner was paused (queued jobs waited) in the last pass that committed (0 for a live merge).",
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_store_commits_total", Help: "Passes that committed new store paths, by mode (drain or live).",
		}, []string{"mode"}),
		storePathsRestored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_store_paths_restored_total", Help: "Paths a live merge added again after they vanished (a job's garbage collection).",
		}),
		storePathsRaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_store_paths_raced_total", Help: "Paths a live merge found written by a Nix process meanwhile (kept as written).",
		}),
		storePaths: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_store_paths", Help: "Valid paths in the live store after the last commit.",
		}),
		storeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_store_bytes", Help: "NAR bytes of the live store after the last commit.",
		}),
		storePathsAdded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_store_paths_added_total", Help: "Store paths merged into the live store.",
		}),
		storeBytesAdded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_store_bytes_added_total", Help: "NAR bytes merged into the live store.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_webhooks_total", Help: "Webhook deliveries by event and result.",
		}, []string{"event", "result"}),
		opsMetrics: newOpsMetrics(),
		gcBytesFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_gc_bytes_freed_total", Help: "NAR bytes deleted from the live store by garbage collection.",
		}),
		gcPathsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydrafy_gc_paths_deleted_total", Help: "Store paths deleted from the live store by garbage collection.",
		}),
		gcLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_gc_last_timestamp_seconds", Help: "Unix time of the last garbage collection that ran.",
		}),
	}
	storeFree := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hydrafy_store_free_bytes", Help: "Free bytes of the live store's filesystem (NaN when unknown).",
	}, func() float64 {
		if f := m.storeFree.Load(); f != nil {
			if n, ok := (*f)(); ok {
				return float64(n)
			}
		}
		return math.NaN()
	})
	m.reg.MustRegister(storeFree, m.watchPasses, m.digestChanges, m.mergeRequests, m.reconciles,
		m.reconcileDuration, m.downtime, m.lastDowntime, m.drain, m.lastDrain, m.lastStall, m.commits,
		m.storePathsRestored, m.storePathsRaced, m.storePaths, m.storeBytes,
		m.storePathsAdded, m.storeBytesAdded, m.webhooks,
		m.gcBytesFreed, m.gcPathsDeleted, m.gcLast,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registerOps()
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	// The in-flight bound is the server's scrape guard; Timeout bounds a
	// slow gather.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: gatherTimeout})
}

// Registry returns the registry, for tests that gather it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveReport records a finished reconcile pass.
func (m *Metrics) ObserveReport(rep reconciler.Report) {
	m.reconciles.WithLabelValues(string(rep.Result)).Inc()
	m.observeReport(rep)
	if rep.Result == reconciler.ResultCanceled {
		return
	}
	m.reconcileDuration.Observe(rep.Seconds)
	stopped := false
	for _, s := range rep.Steps {
		if s.Name == "stop" && s.Error == "" {
			stopped = true
		}
	}
	if rep.Recovery && slices.Contains(rep.Restored, "started") {
		stopped = true // by the killed pass
	}
	// A live pass never stops the runner: its downtime and drain are 0 s.
	if stopped || (rep.Mode == "live" && len(rep.Commits) > 0) {
		m.downtime.Observe(rep.DowntimeSeconds)
		m.lastDowntime.Set(rep.DowntimeSeconds)
	}
	if c := rep.Collect; c != nil {
		if !c.DryRun {
			m.gcBytesFreed.Add(float64(c.BytesFreed))
			m.gcPathsDeleted.Add(float64(c.PathsDeleted))
			m.gcLast.Set(float64(c.At.Unix()))
			m.storePaths.Set(float64(c.PathsKept))
			m.storeBytes.Set(float64(c.BytesKept))
		}
	}
	if len(rep.Commits) > 0 && rep.Mode != "" {
		m.commits.WithLabelValues(rep.Mode).Inc()
		m.drain.Observe(rep.DrainSeconds)
		m.lastDrain.Set(rep.DrainSeconds)
		m.lastStall.Set(rep.StallSeconds)
	}
	for _, c := range rep.Commits {
		m.storePathsAdded.Add(float64(c.PathsAdded))
		m.storeBytesAdded.Add(float64(c.BytesAdded))
		m.storePathsRestored.Add(float64(c.PathsRestored))
		m.storePathsRaced.Add(float64(c.PathsRaced))
		if c.PathsTotal > 0 {
			m.storePaths.Set(float64(c.PathsTotal))
			m.storeBytes.Set(float64(c.BytesTotal))
		}
	}
}

// WatchStoreFree makes each scrape report what free returns as the live
// store's free bytes (false: unknown).
func (m *Metrics) WatchStoreFree(free func() (int64, bool)) { m.storeFree.Store(&free) }

// ObserveWatch records a watch and propose pass.
func (m *Metrics) ObserveWatch(res WatchResult, err error) {
	m.observeWatch(err, time.Now())
	if err != nil {
		m.watchPasses.WithLabelValues("error").Inc()
		return
	}
	m.watchPasses.WithLabelValues("ok").Inc()
	if res.Changed {
		m.digestChanges.Inc()
	}
	for _, mr := range res.MergeRequests {
		switch mr.Action {
		case "opened", "updated":
			m.mergeRequests.WithLabelValues(mr.Action).Inc()
		}
	}
}
