package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// start starts the runner and records the downtime since the stop (for a
// recovery, the stop of the killed pass).
func (p *passRun) start(ctx context.Context) bool {
	r := p.r
	if p.step(ctx, "start", "", r.opts.Runner.Start) != nil {
		return false
	}
	p.started = true
	if p.recovering {
		p.set(func(rep *Report) { rep.Restored = append(rep.Restored, "started") })
	}
	if !p.stoppedAt.IsZero() {
		down := r.opts.Now().Sub(p.stoppedAt)
		// A recovery that stops the runner again adds both downtimes.
		p.set(func(rep *Report) { rep.DowntimeSeconds += seconds(down) })
	}
	return p.inflight(func(in *InFlight) { in.Stopped, in.StoppedAt = false, time.Time{} }) == nil
}

// checkRunning records whether the runner came up after the start.
func (p *passRun) checkRunning(ctx context.Context) {
	_ = p.step(ctx, "running", "", func(ctx context.Context) error {
		up, err := p.r.opts.Runner.Running(ctx)
		if err != nil {
			return fmt.Errorf("checking runner: %w", err)
		}
		if !up {
			return errors.New("runner is not running after start")
		}
		return nil
	})
}

// unpause lets GitLab assign jobs to the runner again, unless it was
// paused before the drain (an administrator's pause stays).
func (p *passRun) unpause(ctx context.Context) bool {
	r := p.r
	restored := "unpaused"
	if p.wasPaused {
		restored = "left paused"
		r.log.Info("leaving the runner paused: it was paused before the drain", "run", p.rep.ID)
	} else if p.step(ctx, "unpause", "", r.opts.Runner.Unpause) != nil {
		return false
	}
	if p.recovering {
		p.set(func(rep *Report) { rep.Restored = append(rep.Restored, restored) })
	}
	p.unpaused = true
	if !p.pausedAt.IsZero() {
		stall := r.opts.Now().Sub(p.pausedAt)
		p.set(func(rep *Report) { rep.StallSeconds = seconds(stall) })
	}
	return p.inflight(func(in *InFlight) { in.Paused = false }) == nil
}

// restore starts and unpauses the runner if this pass (or a pass cut short
// before it) stopped or paused it and did not bring it back yet. It runs on
// a context of its own: shutdown must not leave the runner down.
func (p *passRun) restore(ctx context.Context) bool {
	if (!p.stopped || p.started) && (!p.paused || p.unpaused) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.r.opts.RestoreTimeout)
	defer cancel()
	if p.stopped && !p.started {
		up := false
		if !p.recovering {
			var err error
			if up, err = p.r.opts.Runner.Running(ctx); err != nil {
				up = false
			}
		}
		if !up {
			if !p.start(ctx) {
				return false
			}
		} else {
			p.started = true
			if p.inflight(func(in *InFlight) { in.Stopped = false }) != nil {
				return false
			}
		}
	}
	if p.paused && !p.unpaused {
		return p.unpause(ctx)
	}
	return true
}

// sweep asks the stager to remove stale staging dirs; a failure is only
// logged: it costs disk, not correctness.
func (p *passRun) sweep(ctx context.Context) {
	r := p.r
	r.mu.Lock()
	r.swept = true
	r.mu.Unlock()
	sw, ok := r.opts.Stager.(Sweeper)
	if !ok {
		return
	}
	if err := sw.Sweep(ctx); err != nil {
		r.log.Warn("removing stale staging dirs", "run", p.rep.ID, "err", err)
	}
}
