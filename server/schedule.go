package server

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// watchTimeout bounds one scheduled watch pass.
const watchTimeout = 10 * time.Minute

// schedule adds the watch pass and the periodic resync to the cron. A watch
// pass still running when the next is due is skipped; periodic resyncs
// coalesce in the reconciler like every other trigger.
func (s *Server) schedule() error {
	if s.opts.Watcher != nil && s.opts.WatchSchedule != "" {
		job := cron.NewChain(cron.SkipIfStillRunning(cron.DiscardLogger)).Then(cron.FuncJob(func() {
			ctx, cancel := context.WithTimeout(s.jobs, watchTimeout)
			defer cancel()
			s.RunWatch(ctx)
		}))
		if _, err := s.cron.AddJob(s.opts.WatchSchedule, job); err != nil {
			return fmt.Errorf("parsing watch.schedule %q: %w", s.opts.WatchSchedule, err)
		}
	}
	if s.opts.ResyncSchedule != "" && s.opts.Reconciler != nil {
		_, err := s.cron.AddFunc(s.opts.ResyncSchedule, func() {
			s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindPeriodic})
		})
		if err != nil {
			return fmt.Errorf("parsing reconcile.schedule %q: %w", s.opts.ResyncSchedule, err)
		}
	}
	if s.opts.GCSchedule != "" && s.opts.Reconciler != nil {
		_, err := s.cron.AddFunc(s.opts.GCSchedule, func() {
			s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindGC, Detail: "maintenance window"})
		})
		if err != nil {
			return fmt.Errorf("parsing gc.schedule %q: %w", s.opts.GCSchedule, err)
		}
	}
	return nil
}

// RunWatch runs one watch and propose pass and records it for /status and
// the metrics.
func (s *Server) RunWatch(ctx context.Context) {
	if s.opts.Watcher == nil {
		return
	}
	res, err := s.opts.Watcher.Pass(ctx)
	s.metrics.ObserveWatch(res, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.At = s.opts.Now()
	s.watch.Error = ""
	if res.Digest != "" {
		s.watch.Result = &res
	}
	if err != nil {
		s.watch.Error = err.Error()
		s.log.Warn("watch pass failed", "err", err)
		return
	}
	s.log.Info("watch pass", "digest", res.Digest, "changed", res.Changed, "merge_requests", len(res.MergeRequests))
}
