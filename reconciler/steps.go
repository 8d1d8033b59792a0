package reconciler

import (
	"context"
	"fmt"
)

// stage stages every missing digest; the runner is still busy meanwhile.
// It returns the staged stores that need a commit, how many digests it
// recorded as seeded at once because their commit would add nothing, and
// the digests whose staging ran out of space (a collection may help).
func (p *passRun) stage(ctx context.Context, missing []string) (staged []Staged, held int, full []string) {
	for _, d := range missing {
		start := p.r.opts.Now()
		s, err := p.r.opts.Stager.Stage(ctx, p.ref(d))
		if err != nil {
			err = fmt.Errorf("staging %s: %w", p.ref(d), err)
			if noSpace(err) && p.r.opts.Collector != nil {
				// Not a failure yet: the pass collects and stages again.
				p.set(func(rep *Report) {
					rep.Steps = append(rep.Steps, Step{Name: "stage", Digest: d, Started: start,
						Seconds: seconds(p.r.opts.Now().Sub(start)), Error: err.Error()})
				})
				full = append(full, d)
				if p.noSpace == nil {
					p.noSpace = map[string]error{}
				}
				p.noSpace[d] = err
				continue
			}
			p.record(Step{Name: "stage", Digest: d, Started: start}, err)
			p.noteStalled(d, err)
			continue
		}
		p.record(Step{Name: "stage", Digest: d, Started: start}, nil)
		switch p.planCommit(ctx, s) {
		case planHeld:
			held++
		case planFailed:
		default:
			staged = append(staged, s)
			continue
		}
		if err := s.Close(); err != nil {
			p.r.log.Warn("discarding staged store", "digest", d, "err", err)
		}
	}
	return staged, held, full
}

// restage stages d again after a collection made room (the runner is
// stopped). Its failure is left to the caller to record.
func (p *passRun) restage(ctx context.Context, d string) (Staged, error) {
	var s Staged
	err := p.step(ctx, "stage", d, func(ctx context.Context) error {
		var err error
		s, err = p.r.opts.Stager.Stage(ctx, p.ref(d))
		if err != nil {
			return fmt.Errorf("staging %s: %w", p.ref(d), err)
		}
		return nil
	})
	if err != nil {
		// Recorded once, by the caller's one-line failure.
		p.r.mu.Lock()
		p.errs = p.errs[:len(p.errs)-1]
		p.r.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// planOutcome is what planning a commit found.
type planOutcome int

const (
	// planCommit: the commit adds paths (or the store cannot tell).
	planCommit planOutcome = iota
	// planHeld: the live store holds every path already.
	planHeld
	// planFailed: the commit would fail for good (the schemas differ, the
	// closure is incomplete): no drain for it.
	planFailed
)

// planCommit asks s how many paths its commit would add. A store that
// would add none is recorded as seeded at once. A terminal planning error
// stalls the digest: draining the runner for a commit that must fail would
// only cost downtime. A store that cannot tell is committed as usual.
func (p *passRun) planCommit(ctx context.Context, s Staged) planOutcome {
	pl, ok := s.(Planner)
	if !ok {
		return planCommit
	}
	d := s.Digest()
	start := p.r.opts.Now()
	n, err := pl.PathsToAdd(ctx)
	step := Step{Name: "plan", Digest: d, Started: start}
	switch {
	case err != nil && IsTerminal(err):
		err = fmt.Errorf("planning the commit of %s: %w", p.ref(d), err)
		p.record(step, err)
		p.noteStalled(d, err)
		return planFailed
	case err != nil:
		// Not a failure of the pass: the commit plans again under the lock.
		p.r.log.Warn("planning the commit; committing as usual", "digest", d, "err", err)
		step.Error = err.Error()
	}
	step.Seconds = seconds(p.r.opts.Now().Sub(start))
	p.set(func(rep *Report) { rep.Steps = append(rep.Steps, step) })
	if err != nil || n > 0 {
		return planCommit
	}
	p.seeded(d, CommitReport{})
	return planHeld
}

// drain pauses the runner and waits until it runs no jobs; the runner
// control bounds the wait (the drain timeout). It reports whether the
// runner may be stopped.
func (p *passRun) drain(ctx context.Context) bool {
	r := p.r
	// An administrator's pause must outlast the pass: read it first.
	start := r.opts.Now()
	was, err := r.opts.Runner.Paused(ctx)
	if err != nil {
		p.record(Step{Name: "pause", Started: start}, fmt.Errorf("reading whether the runner is paused: %w", err))
		return false
	}
	p.wasPaused = was
	if p.inflight(func(in *InFlight) { in.Paused, in.WasPaused = true, p.wasPaused }) != nil {
		return false
	}
	p.paused = true
	p.pausedAt = r.opts.Now()
	if p.step(ctx, "pause", "", r.opts.Runner.Pause) != nil {
		return false
	}
	err = p.step(ctx, "wait-idle", "", func(ctx context.Context) error {
		if err := r.opts.Runner.WaitIdle(ctx); err != nil {
			return fmt.Errorf("draining the runner: %w", err)
		}
		return nil
	})
	drained := r.opts.Now().Sub(p.pausedAt)
	p.set(func(rep *Report) { rep.DrainSeconds = seconds(drained) })
	return err == nil
}

// commit merges one staged store and records its digest as seeded, in
// state first thing after the commit succeeded (never before).
func (p *passRun) commit(ctx context.Context, s Staged) {
	p.commitWith(ctx, s, s.Commit)
}

// commitWith is commit with the commit function given (drained or live).
func (p *passRun) commitWith(ctx context.Context, s Staged, fn func(context.Context) (CommitReport, error)) {
	d := s.Digest()
	var cr CommitReport
	err := p.step(ctx, "commit", d, func(ctx context.Context) error {
		var err error
		cr, err = fn(ctx)
		if err != nil {
			return fmt.Errorf("committing %s: %w", d, err)
		}
		return nil
	})
	if err != nil {
		p.noteStalled(d, err)
		return
	}
	p.seeded(d, cr)
}

// seeded records d as seeded: in state, written at once, then in the report.
func (p *passRun) seeded(d string, cr CommitReport) {
	r := p.r
	r.mu.Lock()
	r.state.addSeeded(Seeded{Digest: d, Ref: p.ref(d), At: r.opts.Now(), Run: p.rep.ID})
	delete(r.state.Stalled, d)
	p.rep.Seeded = append(p.rep.Seeded, d)
	p.rep.Commits = append(p.rep.Commits, cr)
	r.mu.Unlock()
	if err := r.persist(); err != nil {
		p.fail(err)
	}
}

// configure points config.toml at the live store and, when pinning, at the
// newest seeded digest that jobs use now (pinned). The runner re-reads the
// file: a changed pin needs no restart.
func (p *passRun) configure(ctx context.Context, pinned []string) {
	r := p.r
	image := ""
	if r.opts.PinImage {
		r.mu.Lock()
		d := pickImage(pinned, r.state.seededSet(), r.state.FirstSeen, pinCounts(r.state.Observed))
		r.mu.Unlock()
		if d != "" {
			image = p.ref(d)
		}
	}
	_ = p.step(ctx, "configure", "", func(context.Context) error {
		changed, err := r.opts.Runner.Configure(r.opts.StoreDir, image)
		if err != nil {
			return fmt.Errorf("configuring runner: %w", err)
		}
		p.set(func(rep *Report) { rep.Image, rep.Changed = image, changed })
		return nil
	})
}
