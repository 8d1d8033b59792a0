// Package server is `hydrafy serve`'s HTTP side: GitLab webhooks, /resync,
// health, Prometheus metrics, /status, and the schedules that run the
// watcher and the periodic resync.
package server

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/robfig/cron/v3"

	"gitlab.com/hydrafy/hydrafy/config"
)

// Options configures a Server.
type Options struct {
	// WebhookSecret is required when the server takes webhooks: GitLab's
	// X-Gitlab-Token must match it.
	WebhookSecret config.Secret
	// PollOnly serves no webhooks (a host GitLab cannot reach): the resync
	// schedule alone finds what changed.
	PollOnly bool
	// ProposalBranch is the proposer's branch: a push to it triggers a pass,
	// which seeds the digest it pins before its merge request's pipeline
	// runs on this host. Empty: only the default branches count.
	ProposalBranch string
	// Role says what this host runs ("bot", "reconciler", …), for /status.
	Role string
	// ResyncToken guards POST /resync; empty refuses every request.
	ResyncToken config.Secret
	// Projects are the watched project paths.
	Projects []string
	// Reconciler is this host's store and runner; nil is a bot-only host,
	// which takes no webhooks and no resyncs.
	Reconciler Reconciler
	// Watcher is run on WatchSchedule; nil runs no watch passes.
	Watcher        Watcher
	WatchSchedule  string
	ResyncSchedule string
	// GCSchedule is the maintenance window of the garbage collection
	// (cron); empty: none.
	GCSchedule string
	// Checks make up /readyz.
	Checks []Check
	// Metrics receives every observation; New makes one when nil.
	Metrics *Metrics
	// MetricsToken, when set, is the bearer token /metrics and /status
	// require.
	MetricsToken config.Secret
	// MetricsListener, when set, serves /metrics and /status (and the
	// health checks) apart from the webhooks; the main listener then
	// answers 404 for them.
	MetricsListener net.Listener
	// MetricsCache is how long one rendering of /metrics answers the
	// scrapes that follow: 0 is a second, negative renders every scrape.
	MetricsCache time.Duration
	// MaxConnections bounds the open connections of each listener;
	// DefaultMaxConnections when 0.
	MaxConnections int
	// ShutdownTimeout bounds the wait for open HTTP requests at shutdown.
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	Now             func() time.Time
}

// Server is hydrafy's HTTP server.
type Server struct {
	opts Options
	log  *slog.Logger
	echo *echo.Echo
	// scrape serves /metrics and /status on opts.MetricsListener; nil
	// when they are on the main listener.
	scrape   *echo.Echo
	errorLog *log.Logger
	// headerTimeout and bodyTimeout are the consts of limits.go; tests
	// shorten them.
	headerTimeout, bodyTimeout time.Duration
	dedup                      *dedup
	watched                    map[string]bool
	metrics                    *Metrics
	cron                       *cron.Cron

	// jobs is the context of scheduled watch passes, cancelled at shutdown.
	jobs       context.Context
	cancelJobs context.CancelFunc

	mu    sync.Mutex
	watch watchStatus
}

type watchStatus struct {
	At     time.Time    `json:"at,omitzero"`
	Result *WatchResult `json:"result,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// ErrNoSecret is the refusal to run without a webhook secret.
var ErrNoSecret = errors.New("no webhook secret: set HYDRAFY_WEBHOOK_SECRET or server.webhook_secret_file")

// New checks opts and builds the server. A server that takes webhooks
// refuses an empty webhook secret: a hook without a secret would let anyone
// trigger a drain.
func New(opts Options) (*Server, error) {
	if opts.Reconciler == nil && opts.Watcher == nil {
		return nil, errors.New("server: neither a reconciler nor a watcher: nothing to run")
	}
	if opts.Reconciler == nil {
		opts.PollOnly = true
	}
	if opts.WebhookSecret == "" && !opts.PollOnly {
		return nil, ErrNoSecret
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	rec := opts.Reconciler
	opts.Metrics.WatchStoreFree(func() (int64, bool) {
		if rec == nil { // a bot-only host has no store
			return 0, false
		}
		if n := rec.Status().StoreFreeBytes; n != nil {
			return *n, true
		}
		return 0, false
	})
	s := &Server{
		opts:    opts,
		log:     opts.Log,
		dedup:   newDedup(dedupSize, dedupTTL),
		watched: map[string]bool{},
		metrics: opts.Metrics,
		cron:    cron.New(cron.WithChain(cron.Recover(cronLogger{opts.Log}))),
	}
	s.jobs, s.cancelJobs = context.WithCancel(context.Background())
	for _, p := range opts.Projects {
		s.watched[strings.ToLower(p)] = true
	}
	if err := s.schedule(); err != nil {
		return nil, err
	}
	s.errorLog = slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn)
	s.headerTimeout, s.bodyTimeout = headerTimeout, bodyTimeout
	s.echo = s.newEcho()
	s.roleRoutes(s.echo)
	scrape := s.echo
	if opts.MetricsListener != nil {
		s.scrape = s.newEcho()
		scrape = s.scrape
	}
	for _, e := range []*echo.Echo{s.echo, s.scrape} {
		if e != nil {
			e.GET("/healthz", s.healthz)
			e.GET("/readyz", s.readyz)
		}
	}
	guard := s.scrapeGuard()
	cacheFor := opts.MetricsCache
	if cacheFor == 0 {
		cacheFor = metricsCacheFor
	}
	scrape.GET("/metrics", echo.WrapHandler(newRenderCache(s.metrics.Handler(), cacheFor, s.metrics.Version)), guard)
	scrape.GET("/status", s.status, s.scrapeGuard())
	return s, nil
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.httpError
	e.Use(middleware.Recover())
	e.Use(s.accessLog)
	return e
}

// Handler returns the HTTP handler of the main listener (for tests and
// embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// cronLogger puts what the scheduler reports (a recovered panic of a
// scheduled pass, above all) into the server's log.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("schedule: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("schedule: "+msg, append(kv, "err", err)...)
}
