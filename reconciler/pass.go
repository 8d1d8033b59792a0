package reconciler

import (
	"context"
	"errors"
	"strings"
	"time"
)

// passRun is the working record of one pass.
type passRun struct {
	r    *Reconciler
	rep  *Report // guarded by r.mu
	errs []error

	paused, unpaused bool
	wasPaused        bool // paused before the drain: left paused
	stopped, started bool
	stoppedAt        time.Time
	pausedAt         time.Time
	// noSpace holds, per digest, the staging error of an image that did
	// not fit.
	noSpace map[string]error
	// recovering: restoring after a killed process. Its Running answer
	// cannot be trusted then (a command control only knows what this
	// process did), so a runner recorded as stopped is started.
	recovering bool
}

// ask is what a pass was asked to do.
type ask struct {
	// explicit: a trigger other than the periodic resync (stalled digests
	// are tried again).
	explicit bool
	// collect, when not empty, asks for a garbage collection and says why.
	collect string
	// onlyCollect: collect, stage nothing.
	onlyCollect bool
}

// pass runs one reconcile pass and returns its report. It never panics on a
// step's failure: each failure is recorded and the runner is restored.
func (r *Reconciler) pass(ctx context.Context, id string, reasons []string, a ask) Report {
	p := &passRun{r: r, rep: &Report{ID: id, Reasons: reasons, Started: r.opts.Now()}}
	r.mu.Lock()
	r.current = p.rep
	r.mu.Unlock()
	log := r.log.With("run", id)
	log.Info("reconcile started", "reasons", strings.Join(reasons, "; "))

	ctx, calls := withCallCounter(ctx)
	p.run(ctx, a)

	r.mu.Lock()
	rep := p.rep
	rep.GitLabRequests = calls.Load()
	rep.Finished = r.opts.Now()
	rep.Seconds = seconds(rep.Finished.Sub(rep.Started))
	if len(p.errs) > 0 {
		rep.Result = ResultFailed
		rep.Error = errors.Join(p.errs...).Error()
		rep.Terminal = IsTerminal(p.errs[0])
	}
	out := cloneReport(*rep)
	r.mu.Unlock()
	// The metrics count the pass before /status lists it: whoever sees it
	// finished there finds it counted.
	if r.opts.OnReport != nil {
		r.opts.OnReport(out)
	}
	r.mu.Lock()
	r.state.addRun(*rep)
	r.current = nil
	r.mu.Unlock()
	if err := r.persist(); err != nil {
		log.Error("saving state", "err", err)
	}
	log.Info("reconcile finished", "result", out.Result, "seconds", out.Seconds,
		"mode", out.Mode, "downtime_seconds", out.DowntimeSeconds, "drain_seconds", out.DrainSeconds, "seeded", out.Seeded, "gitlab_requests", out.GitLabRequests, "err", out.Error)
	return out
}

func (p *passRun) run(ctx context.Context, a ask) {
	r := p.r
	r.mu.Lock()
	inflight := r.state.InFlight
	r.mu.Unlock()
	if needsRecovery(inflight) {
		// A pass was cut short with the runner paused or stopped: bring
		// it back before anything else.
		p.set(func(rep *Report) { rep.Recovery = true })
		p.paused, p.stopped, p.wasPaused = inflight.Paused, inflight.Stopped, inflight.WasPaused
		p.stoppedAt = inflight.StoppedAt
		p.recovering = true
		p.sweep(ctx)
		if !p.restore(ctx) {
			return
		}
		// The runner is back: the rest of the pass tracks its own steps.
		p.paused, p.unpaused, p.stopped, p.started, p.stoppedAt = false, false, false, false, time.Time{}
		p.wasPaused = false
		p.recovering = false
	} else if !r.swept {
		// The first pass of this process: a killed one may have left
		// staging dirs behind.
		p.sweep(ctx)
	}

	obs := p.observe(ctx)
	p.checkSeeded(ctx)
	desired, pinned := desiredDigests(obs), pinnedDigests(obs)
	r.mu.Lock()
	r.state.Observed = obs
	r.state.FirstSeen = markSeen(r.state.FirstSeen, desired, r.opts.Now())
	seeded := r.state.seededSet()
	missing, skipped := plan(desired, seeded, r.state.Stalled, a.explicit)
	if a.onlyCollect {
		missing = nil
	}
	p.rep.Desired, p.rep.Missing, p.rep.Skipped = desired, missing, skipped
	r.mu.Unlock()
	gc := p.planCollect(ctx, a.collect)
	// The observation is written with the next state write: before the
	// runner is touched, or at the end of the pass.
	if len(missing) == 0 && gc == nil {
		p.configure(ctx, pinned)
		p.set(func(rep *Report) {
			if !rep.Changed && len(rep.Restored) == 0 && len(p.errs) == 0 {
				rep.Result = ResultNoop
			} else {
				rep.Result = ResultOK
			}
		})
		return
	}

	staged, held, full := p.stage(ctx, missing)
	defer func() {
		for _, s := range staged {
			if err := s.Close(); err != nil {
				r.log.Warn("discarding staged store", "digest", s.Digest(), "err", err)
			}
		}
	}()
	if len(full) > 0 && gc == nil {
		gc = p.planCollect(ctx, "no space to stage "+p.ref(full[0]))
		if gc == nil {
			for _, d := range full {
				p.fail(p.noRoom(d, nil, p.noSpace[d]))
			}
			full = nil
		}
	}
	if len(staged) == 0 && gc == nil {
		// Nothing to commit: the runner keeps running; config.toml may
		// pin a digest seeded just now (the runner re-reads it).
		if held > 0 {
			p.configure(ctx, pinned)
		}
		if len(p.errs) == 0 {
			p.set(func(rep *Report) { rep.Result = ResultOK })
		}
		return
	}
	// A collection deletes paths: that always drains.
	if r.opts.LiveMerge && gc == nil && live(staged) {
		p.commitLive(ctx, staged, pinned)
		return
	}
	if p.step(ctx, "preflight", "", r.opts.Runner.Preflight) != nil {
		return
	}
	p.set(func(rep *Report) { rep.Mode = "drain" })

	defer p.restore(ctx)
	if !p.drain(ctx) {
		return
	}
	// From the stop on, the pass completes even if the daemon is asked
	// to shut down: the runner must not stay down.
	crit := context.WithoutCancel(ctx)
	if p.inflight(func(in *InFlight) { in.Stopped = true }) != nil {
		return
	}
	p.stopped = true
	if p.step(crit, "stop", "", r.opts.Runner.Stop) != nil {
		return
	}
	p.stoppedAt = r.opts.Now()
	if p.inflight(func(in *InFlight) { in.StoppedAt = p.stoppedAt }) != nil {
		return
	}
	if gc != nil {
		cr := p.collect(crit, gc)
		// What did not fit is staged again now, with the runner still
		// stopped: nothing else writes to the store meanwhile.
		for _, d := range full {
			s, err := p.restage(crit, d)
			if err != nil {
				if noSpace(err) {
					err = p.noRoom(d, &cr, err)
				}
				p.fail(err)
				continue
			}
			staged = append(staged, s)
		}
	}
	for _, s := range staged {
		p.commit(crit, s)
	}
	p.configure(crit, pinned)
	if p.start(crit) {
		p.checkRunning(crit)
	}
	p.unpause(crit)
	if len(p.errs) == 0 {
		p.set(func(rep *Report) { rep.Result = ResultOK })
	}
}

// live reports whether every staged store can be committed live.
func live(staged []Staged) bool {
	for _, s := range staged {
		if _, ok := s.(LiveCommitter); !ok {
			return false
		}
	}
	return true
}

// commitLive commits the staged stores while the runner runs jobs: they
// only add paths, under the locks Nix processes take, so the runner is
// neither paused nor stopped (downtime, drain and stall are 0 s). The
// runner re-reads config.toml by itself.
func (p *passRun) commitLive(ctx context.Context, staged []Staged, pinned []string) {
	p.set(func(rep *Report) { rep.Mode = "live" })
	// As for a drained commit: once started, a commit completes.
	crit := context.WithoutCancel(ctx)
	for _, s := range staged {
		p.commitWith(crit, s, s.(LiveCommitter).CommitLive)
	}
	p.configure(crit, pinned)
	if len(p.errs) == 0 {
		p.set(func(rep *Report) { rep.Result = ResultOK })
	}
}
