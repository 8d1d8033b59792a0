package reconciler

import "context"

// checkSeeded drops from the seeded digests those the live store no longer
// holds entirely (a job's garbage collection, `hydrafy seed --replace`), so
// that this pass stages them again and config.toml does not pin them
// meanwhile. A Stager that cannot tell is trusted, as is the state when the
// check fails.
func (p *passRun) checkSeeded(ctx context.Context) {
	r := p.r
	h, ok := r.opts.Stager.(Holder)
	if !ok {
		return
	}
	r.mu.Lock()
	digests := make([]string, 0, len(r.state.Seeded))
	for _, s := range r.state.Seeded {
		digests = append(digests, s.Digest)
	}
	r.mu.Unlock()
	if len(digests) == 0 {
		return
	}
	held, err := h.Held(ctx, digests)
	if err != nil {
		r.log.Warn("checking the seeded digests against the live store; trusting the state", "run", p.rep.ID, "err", err)
		return
	}
	var lost []string
	r.mu.Lock()
	kept := make([]Seeded, 0, len(r.state.Seeded))
	for _, s := range r.state.Seeded {
		if held[s.Digest] {
			kept = append(kept, s)
		} else {
			lost = append(lost, s.Digest)
		}
	}
	r.state.Seeded = kept
	p.rep.Lost = lost
	r.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	r.log.Warn("the live store lost seeded images; seeding them again", "run", p.rep.ID, "digests", lost)
	if err := r.persist(); err != nil {
		p.fail(err)
	}
}
