package reconciler

import "context"

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
