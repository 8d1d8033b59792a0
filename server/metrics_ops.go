package server

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// opsMetrics are the metrics the alert rules in deploy/ watch.
type opsMetrics struct {
	buildInfo           *prometheus.GaugeVec
	lastReconcileOK     prometheus.Gauge
	lastWatchOK         prometheus.Gauge
	consecutiveFailures prometheus.Gauge
	unseeded            prometheus.Gauge
	gitlabRequests      *prometheus.CounterVec
	passGitLabRequests  prometheus.Histogram
	scrapesRefused      *prometheus.CounterVec
	// version counts changes of the metrics above and of the Observe
	// calls, for the /metrics rendering cache.
	version atomic.Uint64
}

func newOpsMetrics() opsMetrics {
	return opsMetrics{
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hydrafy_build_info", Help: "Always 1; the labels name the running build.",
		}, []string{"version", "goversion"}),
		lastReconcileOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_last_reconcile_success_timestamp_seconds", Help: "Unix time the last successful reconcile pass finished; 0 before the first.",
		}),
		lastWatchOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_last_watch_success_timestamp_seconds", Help: "Unix time the last successful watch pass finished; 0 before the first.",
		}),
		consecutiveFailures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_reconcile_consecutive_failures", Help: "Reconcile passes failed in a row since the last success.",
		}),
		unseeded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydrafy_digests_unseeded", Help: "Digests desired after the last pass that the live store does not hold yet.",
		}),
		gitlabRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_gitlab_requests_total", Help: "GitLab API requests sent (retries included) by answer: 2xx, 3xx, 4xx, 429, 5xx or error.",
		}, []string{"code"}),
		passGitLabRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydrafy_reconcile_gitlab_requests", Help: "GitLab API requests sent by one reconcile pass.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		scrapesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydrafy_http_requests_refused_total", Help: "Requests to read-only endpoints answered 503 because too many were in flight.",
		}, []string{"path"}),
	}
}

// registerOps registers the ops metrics and starts at 0 the series the
// alert rules take increase() of: a counter first seen at 1 would hide
// its first increment.
func (m *Metrics) registerOps() {
	m.reg.MustRegister(m.buildInfo, m.lastReconcileOK, m.lastWatchOK, m.consecutiveFailures,
		m.unseeded, m.gitlabRequests, m.passGitLabRequests, m.scrapesRefused)
	for _, event := range []string{"merge_request", "push", "other"} {
		m.webhooks.WithLabelValues(event, "unauthorized")
	}
	for _, r := range []reconciler.Result{reconciler.ResultOK, reconciler.ResultNoop, reconciler.ResultFailed} {
		m.reconciles.WithLabelValues(string(r))
	}
}

// SetBuildInfo sets hydrafy_build_info for the running version.
func (m *Metrics) SetBuildInfo(version string) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.changed()
}

// ObserveGitLab counts one GitLab API answer (status 0: no answer). It is
// what reconciler.CountingTransport reports to.
func (m *Metrics) ObserveGitLab(status int) {
	m.gitlabRequests.WithLabelValues(statusClass(status)).Inc()
	m.changed()
}

func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status == 429:
		return "429"
	case status >= 100 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return "error"
}

// WatchStore adds the size of the filesystem holding dir, read at each
// scrape: with hydrafy_store_free_bytes, the alerts' share of free space.
func (m *Metrics) WatchStore(dir string) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hydrafy_store_fs_size_bytes", Help: "Size of the store's filesystem in bytes; -1 when it cannot be read.",
	}, func() float64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return -1
		}
		return float64(st.Blocks) * float64(st.Bsize)
	}))
}

// observeReport updates the alerting gauges from a finished pass.
func (o *opsMetrics) observeReport(rep reconciler.Report) {
	defer o.version.Add(1)
	if rep.Result == reconciler.ResultCanceled {
		return
	}
	o.passGitLabRequests.Observe(float64(rep.GitLabRequests))
	switch rep.Result {
	case reconciler.ResultOK, reconciler.ResultNoop:
		o.lastReconcileOK.Set(unixSeconds(rep.Finished))
		o.consecutiveFailures.Set(0)
	case reconciler.ResultFailed:
		o.consecutiveFailures.Inc()
	}
	seeded := map[string]bool{}
	for _, d := range rep.Seeded {
		seeded[d] = true
	}
	unseeded := map[string]bool{}
	for _, d := range append(append([]string(nil), rep.Missing...), rep.Skipped...) {
		if !seeded[d] {
			unseeded[d] = true
		}
	}
	o.unseeded.Set(float64(len(unseeded)))
}

func (o *opsMetrics) observeWatch(err error, now time.Time) {
	defer o.version.Add(1)
	if err == nil {
		o.lastWatchOK.Set(unixSeconds(now))
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
