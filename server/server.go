// Package server is `hydrafy serve`'s HTTP side: GitLab webhooks, /resync,
// health, Prometheus metrics, /status, and the schedules that run the
// watcher and the periodic resync.
package server

import (
	"context"
	"errors"
	"fmt"
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
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Reconciler is the loop the server triggers and reports on.
type Reconciler interface {
	// Run runs queued passes until ctx ends, finishing the pass under way.
	Run(ctx context.Context) error
	// Trigger queues a pass, or joins one queued and not started.
	Trigger(reconciler.Reason) *reconciler.Ticket
	// Status returns a snapshot for /status.
	Status() reconciler.Status
}

// Watcher runs one watch and propose pass.
type Watcher interface {
	Pass(ctx context.Context) (WatchResult, error)
}

// WatchResult is what a watch and propose pass found and did.
type WatchResult struct {
	// Digest is the tracked tag's index digest.
	Digest string `json:"digest"`
	// Changed says the digest differs from the one tracked before.
	Changed       bool           `json:"changed"`
	MergeRequests []MergeRequest `json:"merge_requests"`
}

// MergeRequest is the proposer's merge request in one project.
type MergeRequest struct {
	Project string `json:"project"`
	IID     int    `json:"iid"`
	URL     string `json:"url,omitempty"`
	// Action is "opened", "updated" or "unchanged".
	Action string `json:"action"`
}

// Check is one readiness condition.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configures a Server.
type Options struct {
	// WebhookSecret is required: GitLab's X-Gitlab-Token must match it.
	WebhookSecret config.Secret
	// ResyncToken guards POST /resync; empty refuses every request.
	ResyncToken config.Secret
	// Projects are the watched project paths.
	Projects   []string
	Reconciler Reconciler
	// Watcher is run on WatchSchedule; nil runs no watch passes.
	Watcher        Watcher
	WatchSchedule  string
	ResyncSchedule string
	// Checks make up /readyz.
	Checks []Check
	// Metrics receives every observation; New makes one when nil.
	Metrics *Metrics
	// ShutdownTimeout bounds the wait for open HTTP requests at shutdown.
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	Now             func() time.Time
}

// Server is hydrafy's HTTP server.
type Server struct {
	opts    Options
	log     *slog.Logger
	echo    *echo.Echo
	dedup   *dedup
	watched map[string]bool
	metrics *Metrics
	cron    *cron.Cron

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

// New checks opts and builds the server. It refuses an empty webhook
// secret: a hook without a secret would let anyone trigger a drain.
func New(opts Options) (*Server, error) {
	if opts.WebhookSecret == "" {
		return nil, errors.New("no webhook secret: set HYDRAFY_WEBHOOK_SECRET or server.webhook_secret_file")
	}
	if opts.Reconciler == nil {
		return nil, errors.New("server: no reconciler")
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
	s := &Server{
		opts:    opts,
		log:     opts.Log,
		dedup:   newDedup(dedupSize, dedupTTL),
		watched: map[string]bool{},
		metrics: opts.Metrics,
		cron:    cron.New(cron.WithChain(cron.Recover(cron.DiscardLogger))),
	}
	s.jobs, s.cancelJobs = context.WithCancel(context.Background())
	for _, p := range opts.Projects {
		s.watched[strings.ToLower(p)] = true
	}
	if err := s.schedule(); err != nil {
		return nil, err
	}
	s.echo = s.routes()
	return s, nil
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.httpError
	e.Use(middleware.Recover())
	e.Use(s.accessLog)
	e.POST("/webhooks/gitlab", s.webhook)
	e.POST("/resync", s.resync)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	e.GET("/status", s.status)
	return e
}

// Handler returns the HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// Serve runs the reconcile loop, the schedules and the HTTP server on ln
// until ctx ends, then shuts down gracefully: it stops accepting requests
// and schedules and waits for a running reconcile to finish. It queues a
// start-up pass first, so that a daemon restarted after a crash converges.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoop()
	loopDone := make(chan error, 1)
	go func() { loopDone <- s.opts.Reconciler.Run(loopCtx) }()
	s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindStartup})
	s.cron.Start()

	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srvDone:
	}
	s.log.Info("shutting down")
	s.cancelJobs()
	<-s.cron.Stop().Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("closing open requests", "err", err)
	}
	stopLoop()
	if err := <-loopDone; err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("reconcile loop: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		// Only method, path and status: headers carry the secrets.
		s.log.Debug("http", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", c.Response().Status, "ms", float64(time.Since(start).Microseconds())/1000)
		return nil
	}
}

func (s *Server) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = strings.ToLower(http.StatusText(code))
		if m, ok := he.Message.(string); ok {
			msg = m
		}
	} else {
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
	}
	_ = c.JSON(code, map[string]string{"error": msg})
}
