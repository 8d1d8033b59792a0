package reconciler

import (
	"context"
	"time"
)

// DefaultMinInterval is the least time between the starts of two passes
// that Run starts, unless a trigger asks for an immediate pass: a burst of
// webhooks or resyncs then costs one pass every few seconds, and GitLab is
// read at that pace at most.
const DefaultMinInterval = 5 * time.Second

// paceWait waits until the queued pass may start: min_interval after the
// last pass started, or at once when a trigger asked for an immediate pass
// (an explicit /resync?wait=1). It returns false when ctx ended first.
func (r *Reconciler) paceWait(ctx context.Context) bool {
	for {
		r.mu.Lock()
		immediate := r.next != nil && r.next.immediate
		wait := time.Until(r.lastStart.Add(r.opts.MinInterval))
		r.mu.Unlock()
		if immediate || wait <= 0 {
			return true
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
			return true
		case <-r.wake: // a trigger that may ask for an immediate pass
			timer.Stop()
		}
	}
}

// started records that a pass started now, for the pace.
func (r *Reconciler) started() {
	r.mu.Lock()
	r.lastStart = time.Now()
	r.mu.Unlock()
}
