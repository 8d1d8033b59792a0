package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Serve runs the reconcile loop, the schedules and the HTTP server on ln
// until ctx ends, then shuts down gracefully: it stops accepting requests
// and schedules and waits for a running reconcile to finish. It queues a
// start-up pass first, so that a daemon restarted after a crash converges.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoop()
	loopDone := make(chan error, 1)
	if s.opts.Reconciler != nil {
		go func() { loopDone <- s.opts.Reconciler.Run(loopCtx) }()
		s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindStartup})
	} else {
		loopDone <- nil
	}
	s.cron.Start()

	srvs := []*http.Server{s.httpServer(s.echo)}
	lns := []net.Listener{ln}
	if s.scrape != nil {
		srvs = append(srvs, s.httpServer(s.scrape))
		lns = append(lns, s.opts.MetricsListener)
	}
	srvDone := make(chan error, len(srvs))
	for i, srv := range srvs {
		go func() { srvDone <- srv.Serve(s.limitListener(lns[i])) }()
	}
	if s.scrape != nil {
		s.log.Info("serving", "addr", ln.Addr().String(), "metrics_addr", s.opts.MetricsListener.Addr().String(),
			"role", s.opts.Role, "webhooks", !s.opts.PollOnly)
	} else {
		s.log.Info("serving", "addr", ln.Addr().String(), "role", s.opts.Role, "webhooks", !s.opts.PollOnly)
	}

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
	for _, srv := range srvs {
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Warn("closing open requests", "err", err)
		}
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
