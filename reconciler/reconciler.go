package reconciler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Project is one watched project: its path and the CI files read on its
// default branch.
type Project struct {
	Path  string
	Files []string
}

// Options configures a Reconciler. Repo, Find, Stager and Runner are
// required.
type Options struct {
	// Image is the watched repository, such as "nixos/nix".
	Image    string
	Projects []Project
	// DefaultImage is an optional digest reference the runner needs seeded
	// whatever the projects pin (for example its default job image).
	DefaultImage string
	// ProposalBranch is the branch on which the proposer pins a new digest
	// in each project (its merge request's source branch). The digests it
	// pins are seeded ahead of the merge, so that the merge request's own
	// pipeline finds their stores; config.toml never pins them. Empty: only
	// default branches count.
	ProposalBranch string
	// LiveMerge commits while the runner runs jobs when every staged store
	// allows it (LiveCommitter): no pause, no drain, no stop. Otherwise
	// the runner is drained and stopped around the commits.
	LiveMerge bool
	// StoreDir is the live store dir config.toml mounts.
	StoreDir string
	// PinImage makes config.toml pin the newest seeded digest as the
	// runner's default image.
	PinImage bool
	// StateDir holds the persisted state.
	StateDir string
	// RestoreTimeout bounds the restart and unpause after a failure.
	RestoreTimeout time.Duration

	Repo   Repo
	Find   FindFunc
	Stager Stager
	Runner Runner
	// Collector, when set, collects the live store's garbage: in passes
	// asked to (KindGC), when the store runs low on space, and when an
	// image does not fit.
	Collector Collector

	// MinInterval is the least time between the starts of two passes
	// Run starts; a Reason with Immediate set skips the wait. 0 is no
	// pacing.
	MinInterval time.Duration

	// OnReport, if set, is called with every finished report (metrics),
	// before the state and Status list it.
	OnReport func(Report)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Kind says where a trigger came from.
type Kind string

// The kinds of trigger.
const (
	KindWebhook  Kind = "webhook"
	KindResync   Kind = "resync"
	KindPeriodic Kind = "periodic"
	KindStartup  Kind = "startup"
	KindManual   Kind = "manual"
	// KindProposal: the proposer opened or updated merge requests that
	// pin a digest the store may lack.
	KindProposal Kind = "proposal"
)

// Reason is why a pass was asked for.
type Reason struct {
	Kind   Kind
	Detail string
	// Immediate starts the pass without waiting for MinInterval (a
	// person waiting for its report asked for it).
	Immediate bool
}

func (r Reason) String() string {
	if r.Detail == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ": " + r.Detail
}

// maxReasons bounds the reasons kept on one coalesced ticket.
const maxReasons = 10

// Ticket is a queued or running pass. Every trigger that arrives before the
// pass starts gets the same ticket.
type Ticket struct {
	ID      string
	reasons []Reason
	more    int // reasons dropped beyond maxReasons
	// immediate: a trigger asked to start without waiting for the pace.
	immediate bool
	// onlyCollect: a pass that only collects garbage (`hydrafy gc`).
	onlyCollect bool
	done        chan struct{}
	report      Report
}

// Done is closed when the pass has finished.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Report returns the pass's report; it is complete once Done is closed.
func (t *Ticket) Report() Report {
	<-t.done
	return t.report
}

// Wait waits for the pass or ctx, whichever ends first.
func (t *Ticket) Wait(ctx context.Context) (Report, error) {
	select {
	case <-t.done:
		return t.report, nil
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
}

// Reconciler runs passes one at a time.
type Reconciler struct {
	opts Options
	log  *slog.Logger

	passMu sync.Mutex // one pass at a time, also across Once and Run
	saveMu sync.Mutex // one state write at a time

	mu      sync.Mutex // guards the fields below
	state   State
	next    *Ticket // queued, not started
	current *Report // the running pass, as far as it got
	wake    chan struct{}
	lock    *os.File // flock on the state dir, held while the Reconciler lives
	swept   bool     // stale staging dirs were swept by a pass of this process
	// lastStart is when the last pass started, for MinInterval.
	lastStart time.Time
	// looked are default branches asked of GitLab outside a pass;
	// lookups joins concurrent askers.
	looked  map[string]string
	lookups singleflight.Group
}

// New loads the state from opts.StateDir and returns a Reconciler.
func New(opts Options, log *slog.Logger) (*Reconciler, error) {
	switch {
	case opts.Repo == nil:
		return nil, errors.New("reconciler: no GitLab repo reader")
	case opts.Find == nil:
		return nil, errors.New("reconciler: no reference finder")
	case opts.Stager == nil:
		return nil, errors.New("reconciler: no store stager")
	case opts.Runner == nil:
		return nil, errors.New("reconciler: no runner control")
	case opts.Image == "":
		return nil, errors.New("reconciler: no image to watch")
	case opts.StateDir == "":
		return nil, errors.New("reconciler: no state dir")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RestoreTimeout == 0 {
		opts.RestoreTimeout = 5 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := lockStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	st, err := loadState(opts.StateDir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Reconciler{opts: opts, log: log, state: st, lock: lock, wake: make(chan struct{}, 1)}, nil
}

// Close releases the state dir. The Reconciler must not be used after.
func (r *Reconciler) Close() error {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	return r.lock.Close()
}

// Trigger asks for a pass. If one is queued and not started, the trigger
// joins it; otherwise a new pass is queued to run after the current one.
func (r *Reconciler) Trigger(reason Reason) *Ticket {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.next
	if t == nil {
		t = &Ticket{ID: newRunID(r.opts.Now()), done: make(chan struct{})}
		r.next = t
	}
	t.immediate = t.immediate || reason.Immediate
	if len(t.reasons) < maxReasons {
		t.reasons = append(t.reasons, reason)
	} else {
		t.more++
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return t
}

// Run runs queued passes until ctx is done. A pass under way when ctx ends
// is allowed to finish: before the runner stops it is cut short (the runner
// is unpaused), after the stop it completes. Queued passes are then
// reported as canceled.
func (r *Reconciler) Run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			r.cancelQueued()
			return nil
		}
		select {
		case <-ctx.Done():
			r.cancelQueued()
			return nil
		case <-r.wake:
		}
		if !r.paceWait(ctx) {
			r.cancelQueued()
			return nil
		}
		r.mu.Lock()
		t := r.next
		r.next = nil
		r.mu.Unlock()
		if t == nil {
			continue
		}
		r.runTicket(ctx, t)
	}
}

// Once runs one pass now, after any pass already under way. It is what
// `hydrafy reconcile` uses.
func (r *Reconciler) Once(ctx context.Context, reason Reason) Report {
	t := &Ticket{ID: newRunID(r.opts.Now()), reasons: []Reason{reason}, done: make(chan struct{})}
	r.runTicket(ctx, t)
	return t.report
}

func (r *Reconciler) runTicket(ctx context.Context, t *Ticket) {
	reasons := make([]string, 0, len(t.reasons)+1)
	for _, x := range t.reasons {
		reasons = append(reasons, x.String())
	}
	if t.more > 0 {
		reasons = append(reasons, fmt.Sprintf("and %d more", t.more))
	}
	r.passMu.Lock()
	r.started()
	rep := r.pass(ctx, t.ID, reasons, ask{explicit: explicit(t.reasons), collect: collectWhy(t.reasons), onlyCollect: t.onlyCollect})
	r.passMu.Unlock()
	t.report = rep
	close(t.done)
}

// Collect runs one pass now that only collects the live store's garbage
// (draining the runner if anything is to go), after any pass under way.
// It is what `hydrafy gc --config` uses.
func (r *Reconciler) Collect(ctx context.Context, reason Reason) Report {
	reason.Kind = KindGC
	t := &Ticket{ID: newRunID(r.opts.Now()), reasons: []Reason{reason}, done: make(chan struct{}), onlyCollect: true}
	r.runTicket(ctx, t)
	return t.report
}

// collectWhy is why the reasons ask for a garbage collection ("" when
// they do not).
func collectWhy(reasons []Reason) string {
	for _, x := range reasons {
		if x.Kind == KindGC {
			if x.Detail != "" {
				return x.Detail
			}
			return "asked"
		}
	}
	return ""
}

func (r *Reconciler) cancelQueued() {
	r.mu.Lock()
	t := r.next
	r.next = nil
	r.mu.Unlock()
	if t == nil {
		return
	}
	now := r.opts.Now()
	t.report = Report{ID: t.ID, Started: now, Finished: now, Result: ResultCanceled, Error: "daemon shutting down"}
	close(t.done)
}

func newRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
