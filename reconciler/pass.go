package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// passRun is the working record of one pass.
type passRun struct {
	r    *Reconciler
	rep  *Report // guarded by r.mu
	errs []error

	paused, unpaused bool
	stopped, started bool
	stoppedAt        time.Time
	// recovering: restoring after a killed process. Its Running answer
	// cannot be trusted then (a command control only knows what this
	// process did), so a runner recorded as stopped is started.
	recovering bool
}

// pass runs one reconcile pass and returns its report. It never panics on a
// step's failure: each failure is recorded and the runner is restored.
func (r *Reconciler) pass(ctx context.Context, id string, reasons []string, explicit bool) Report {
	p := &passRun{r: r, rep: &Report{ID: id, Reasons: reasons, Started: r.opts.Now()}}
	r.mu.Lock()
	r.current = p.rep
	r.mu.Unlock()
	log := r.log.With("run", id)
	log.Info("reconcile started", "reasons", strings.Join(reasons, "; "))

	p.run(ctx, explicit)

	r.mu.Lock()
	rep := p.rep
	rep.Finished = r.opts.Now()
	rep.Seconds = seconds(rep.Finished.Sub(rep.Started))
	if len(p.errs) > 0 {
		rep.Result = ResultFailed
		rep.Error = errors.Join(p.errs...).Error()
		rep.Terminal = IsTerminal(p.errs[0])
	}
	r.state.addRun(*rep)
	r.current = nil
	out := cloneReport(*rep)
	r.mu.Unlock()
	if err := r.persist(); err != nil {
		log.Error("saving state", "err", err)
	}
	log.Info("reconcile finished", "result", out.Result, "seconds", out.Seconds,
		"downtime_seconds", out.DowntimeSeconds, "seeded", out.Seeded, "err", out.Error)
	return out
}

func (p *passRun) run(ctx context.Context, explicitRun bool) {
	r := p.r
	r.mu.Lock()
	inflight := r.state.InFlight
	r.mu.Unlock()
	if needsRecovery(inflight) {
		// A pass was cut short with the runner paused or stopped: bring
		// it back before anything else.
		p.set(func(rep *Report) { rep.Recovery = true })
		p.paused, p.stopped = inflight.Paused, inflight.Stopped
		p.recovering = true
		if !p.restore(ctx) {
			return
		}
		// The runner is back: the rest of the pass tracks its own steps.
		p.paused, p.unpaused, p.stopped, p.started, p.stoppedAt = false, false, false, false, time.Time{}
		p.recovering = false
	}

	obs := p.observe(ctx)
	desired := desiredDigests(obs)
	r.mu.Lock()
	r.state.Observed = obs
	r.state.FirstSeen = markSeen(r.state.FirstSeen, desired, r.opts.Now())
	seeded := r.state.seededSet()
	missing, skipped := plan(desired, seeded, r.state.Stalled, explicitRun)
	p.rep.Desired, p.rep.Missing, p.rep.Skipped = desired, missing, skipped
	r.mu.Unlock()
	err := r.persist()
	if err != nil {
		p.fail(err)
		return
	}
	if len(missing) == 0 {
		p.configure(ctx, desired)
		p.set(func(rep *Report) {
			if !rep.Changed && len(p.errs) == 0 {
				rep.Result = ResultNoop
			} else {
				rep.Result = ResultOK
			}
		})
		return
	}

	if p.step(ctx, "preflight", "", r.opts.Runner.Preflight) != nil {
		return
	}
	staged := p.stage(ctx, missing)
	defer func() {
		for _, s := range staged {
			if err := s.Close(); err != nil {
				r.log.Warn("discarding staged store", "digest", s.Digest(), "err", err)
			}
		}
	}()
	if len(staged) == 0 {
		return
	}

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
	for _, s := range staged {
		p.commit(crit, s)
	}
	p.configure(crit, desired)
	if p.start(crit) {
		p.checkRunning(crit)
	}
	p.unpause(crit)
	if len(p.errs) == 0 {
		p.set(func(rep *Report) { rep.Result = ResultOK })
	}
}

// observe reads every watched project's default branch. A project that
// cannot be read keeps its last observed pins, marked with the error:
// seeding only adds, so acting on the last known pins is safe.
func (p *passRun) observe(ctx context.Context) Observation {
	r := p.r
	r.mu.Lock()
	prev := map[string]ProjectPins{}
	for _, pp := range r.state.Observed.Projects {
		prev[pp.Path] = pp
	}
	r.mu.Unlock()

	obs := Observation{At: r.opts.Now(), Default: r.opts.DefaultImage}
	var errs []error
	start := r.opts.Now()
	for _, proj := range r.opts.Projects {
		pp, err := p.readProject(ctx, proj)
		if err != nil {
			errs = append(errs, err)
			pp = prev[proj.Path]
			pp.Path = proj.Path
			pp.Error = err.Error()
		}
		obs.Projects = append(obs.Projects, pp)
	}
	p.record(Step{Name: "read-pins", Started: start}, errors.Join(errs...))
	return obs
}

func (p *passRun) readProject(ctx context.Context, proj Project) (ProjectPins, error) {
	r := p.r
	pp := ProjectPins{Path: proj.Path, Pins: []Pin{}}
	branch, err := r.opts.Repo.DefaultBranch(ctx, proj.Path)
	if err != nil {
		return pp, fmt.Errorf("reading default branch of %s: %w", proj.Path, err)
	}
	pp.Branch = branch
	for _, f := range proj.Files {
		src, err := r.opts.Repo.ReadFile(ctx, proj.Path, f, branch)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return pp, fmt.Errorf("reading %s of %s at %s: %w", f, proj.Path, branch, err)
		}
		pins, err := r.opts.Find(src, r.opts.Image)
		if err != nil {
			return pp, Terminal(fmt.Errorf("finding %s in %s of %s: %w", r.opts.Image, f, proj.Path, err))
		}
		for _, pin := range pins {
			pin.File = f
			pp.Pins = append(pp.Pins, pin)
		}
	}
	return pp, nil
}

// stage stages every missing digest; the runner is still busy meanwhile.
func (p *passRun) stage(ctx context.Context, missing []string) []Staged {
	var staged []Staged
	for _, d := range missing {
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
			p.noteStalled(d, err)
			continue
		}
		staged = append(staged, s)
	}
	return staged
}

// drain pauses the runner and waits until it runs no jobs, bounded by the
// drain timeout. It reports whether the runner may be stopped.
func (p *passRun) drain(ctx context.Context) bool {
	r := p.r
	if p.inflight(func(in *InFlight) { in.Paused = true }) != nil {
		return false
	}
	p.paused = true
	if p.step(ctx, "pause", "", r.opts.Runner.Pause) != nil {
		return false
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if r.opts.DrainTimeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, r.opts.DrainTimeout)
	}
	defer cancel()
	err := p.step(wctx, "wait-idle", "", func(ctx context.Context) error {
		if err := r.opts.Runner.WaitIdle(ctx); err != nil {
			return fmt.Errorf("waiting for running jobs (drain timeout %s): %w", r.opts.DrainTimeout, err)
		}
		return nil
	})
	return err == nil
}

func (p *passRun) commit(ctx context.Context, s Staged) {
	r := p.r
	d := s.Digest()
	var cr CommitReport
	err := p.step(ctx, "commit", d, func(ctx context.Context) error {
		var err error
		cr, err = s.Commit(ctx)
		if err != nil {
			return fmt.Errorf("committing %s: %w", d, err)
		}
		return nil
	})
	if err != nil {
		p.noteStalled(d, err)
		return
	}
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
// newest seeded desired digest.
func (p *passRun) configure(ctx context.Context, desired []string) {
	r := p.r
	image := ""
	if r.opts.PinImage {
		r.mu.Lock()
		d := pickImage(desired, r.state.seededSet(), r.state.FirstSeen, pinCounts(r.state.Observed))
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

func (p *passRun) start(ctx context.Context) bool {
	r := p.r
	if p.step(ctx, "start", "", r.opts.Runner.Start) != nil {
		return false
	}
	p.started = true
	if !p.stoppedAt.IsZero() {
		down := r.opts.Now().Sub(p.stoppedAt)
		p.set(func(rep *Report) { rep.DowntimeSeconds = seconds(down) })
	}
	return p.inflight(func(in *InFlight) { in.Stopped = false }) == nil
}

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

func (p *passRun) unpause(ctx context.Context) bool {
	r := p.r
	if p.step(ctx, "unpause", "", r.opts.Runner.Unpause) != nil {
		return false
	}
	p.unpaused = true
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

func (p *passRun) ref(digest string) string { return p.r.opts.Image + "@" + digest }

// step runs fn as a timed, recorded step.
func (p *passRun) step(ctx context.Context, name, digest string, fn func(context.Context) error) error {
	s := Step{Name: name, Digest: digest, Started: p.r.opts.Now()}
	err := fn(ctx)
	p.record(s, err)
	return err
}

func (p *passRun) record(s Step, err error) {
	r := p.r
	s.Seconds = seconds(r.opts.Now().Sub(s.Started))
	if err != nil {
		s.Error = err.Error()
		s.Terminal = IsTerminal(err)
		r.log.Warn("reconcile step failed", "run", p.rep.ID, "step", s.Name, "digest", s.Digest, "err", err)
	}
	r.mu.Lock()
	p.rep.Steps = append(p.rep.Steps, s)
	if err != nil {
		p.errs = append(p.errs, err)
	}
	r.mu.Unlock()
}

func (p *passRun) fail(err error) {
	p.r.mu.Lock()
	p.errs = append(p.errs, err)
	p.r.mu.Unlock()
}

func (p *passRun) set(f func(*Report)) {
	p.r.mu.Lock()
	f(p.rep)
	p.r.mu.Unlock()
}

// inflight updates and persists the in-flight record before the runner is
// touched, so that a killed process knows what to undo. A record with
// nothing left to undo is dropped.
func (p *passRun) inflight(f func(*InFlight)) error {
	r := p.r
	r.mu.Lock()
	if r.state.InFlight == nil {
		r.state.InFlight = &InFlight{Run: p.rep.ID}
	}
	r.state.InFlight.Run = p.rep.ID
	f(r.state.InFlight)
	if !needsRecovery(r.state.InFlight) {
		r.state.InFlight = nil
	}
	r.mu.Unlock()
	err := r.persist()
	if err != nil {
		p.fail(err)
	}
	return err
}

func (p *passRun) noteStalled(digest string, err error) {
	if !IsTerminal(err) {
		return
	}
	r := p.r
	r.mu.Lock()
	if r.state.Stalled == nil {
		r.state.Stalled = map[string]string{}
	}
	r.state.Stalled[digest] = err.Error()
	r.mu.Unlock()
}
