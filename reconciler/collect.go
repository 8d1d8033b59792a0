package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
)

// KindGC asks for a garbage collection of the live store (the maintenance
// window, `hydrafy gc`).
const KindGC Kind = "gc"

// Collector collects the live store's garbage. Digests are the index
// digests whose seeded images must stay (pinned somewhere); the rest of
// the policy (ages, roots, size) is the collector's.
type Collector interface {
	// Plan says what Collect would delete now, changing nothing.
	Plan(ctx context.Context, digests []string) (CollectReport, error)
	// Collect deletes under the exclusive big-lock: the runner is stopped.
	Collect(ctx context.Context, digests []string) (CollectReport, error)
	// Space reports the store's filesystem space and its min_free.
	Space() (Space, error)
}

// Space is the free space of the live store's filesystem.
type Space struct {
	Dir   string `json:"dir"`
	Free  int64  `json:"free_bytes"`
	Total int64  `json:"total_bytes"`
	// MinFree is the threshold in bytes below which a pass collects; zero:
	// none.
	MinFree int64 `json:"min_free_bytes"`
}

// Low reports whether free space is below the threshold.
func (s Space) Low() bool { return s.MinFree > 0 && s.Free < s.MinFree }

// CollectReport is what a garbage collection deleted (or would delete).
type CollectReport struct {
	At           time.Time `json:"at,omitzero"`
	DryRun       bool      `json:"dry_run,omitempty"`
	PathsDeleted int       `json:"paths_deleted"`
	BytesFreed   int64     `json:"bytes_freed"`
	// Leftovers count unregistered entries removed (an interrupted run's).
	Leftovers int   `json:"leftovers,omitempty"`
	PathsKept int   `json:"paths_kept"`
	BytesKept int64 `json:"bytes_kept"`
	// Space is the filesystem after the collection.
	Space   Space   `json:"space"`
	Seconds float64 `json:"seconds"`
	Why     string  `json:"why,omitempty"`
}

// BranchLister is an optional interface of a Repo: every branch of a
// project. Garbage collection needs it: an image pinned on any branch
// stays.
type BranchLister interface {
	Branches(ctx context.Context, project string) ([]string, error)
}

// wanted is a collection planned for this pass.
type wanted struct {
	digests []string
	plan    CollectReport
}

// wantsCollect reports whether any reason asks for a collection.
func wantsCollect(reasons []Reason) bool {
	for _, r := range reasons {
		if r.Kind == KindGC {
			return true
		}
	}
	return false
}

// planCollect decides whether this pass collects: when asked (why not
// empty) or when the store's filesystem is low on space, and only when
// the collection would delete something (a drain for nothing costs
// downtime). A failure to read what is pinned refuses the collection.
func (p *passRun) planCollect(ctx context.Context, why string) *wanted {
	r := p.r
	c := r.opts.Collector
	if c == nil {
		return nil
	}
	sp, err := c.Space()
	if err != nil {
		r.log.Warn("reading the store's free space", "run", p.rep.ID, "err", err)
	} else if why == "" && sp.Low() {
		why = fmt.Sprintf("%s free, below min_free %s", human(sp.Free), human(sp.MinFree))
	}
	if why == "" {
		return nil
	}
	var w *wanted
	_ = p.step(ctx, "gc-plan", "", func(ctx context.Context) error {
		digests, err := p.keepDigests(ctx)
		if err != nil {
			return fmt.Errorf("not collecting garbage: %w", err)
		}
		plan, err := c.Plan(ctx, digests)
		if err != nil {
			return fmt.Errorf("planning the garbage collection: %w", err)
		}
		plan.Why = why
		p.set(func(rep *Report) { rep.Collect = &plan })
		// Leftovers alone are no reason to drain: while jobs run, they are
		// mostly builds in progress. The next collection removes the rest.
		if plan.PathsDeleted > 0 {
			w = &wanted{digests: digests, plan: plan}
		} else {
			r.log.Info("garbage collection: nothing to delete", "run", p.rep.ID, "why", why)
		}
		return nil
	})
	return w
}

// collect runs the planned collection; the runner is stopped. Seeded
// digests whose images went are dropped from the state.
func (p *passRun) collect(ctx context.Context, w *wanted) CollectReport {
	r := p.r
	var cr CollectReport
	err := p.step(ctx, "gc", "", func(ctx context.Context) error {
		var err error
		cr, err = r.opts.Collector.Collect(ctx, w.digests)
		if err != nil {
			return fmt.Errorf("collecting garbage: %w", err)
		}
		return nil
	})
	if err != nil {
		return cr
	}
	cr.Why = w.plan.Why
	if cr.At.IsZero() {
		cr.At = r.opts.Now()
	}
	r.mu.Lock()
	p.rep.Collect = &cr
	r.state.LastGC = &cr
	r.mu.Unlock()
	if err := r.persist(); err != nil {
		p.fail(err)
	}
	r.log.Info("garbage collected", "run", p.rep.ID, "paths", cr.PathsDeleted, "bytes", cr.BytesFreed, "free", cr.Space.Free)
	p.checkSeeded(ctx)
	return cr
}

// keepDigests returns what this pass's collection keeps by digest:
// PinnedDigests with the runner's default image and the candidate about
// to be proposed.
func (p *passRun) keepDigests(ctx context.Context) ([]string, error) {
	r := p.r
	r.mu.Lock()
	candidate := r.state.Candidate
	r.mu.Unlock()
	return PinnedDigests(ctx, r.opts.Repo, r.opts.Find, r.opts.Image, r.opts.Projects, r.opts.DefaultImage, candidate)
}

// PinnedDigests returns, sorted, every digest of image pinned on any
// branch of the projects, and those of the digest references in extra
// (empty ones are skipped). It reads GitLab and changes nothing; repo must
// be a BranchLister. Any project it cannot read fails it: that project
// may pin anything.
func PinnedDigests(ctx context.Context, repo Repo, find FindFunc, image string, projects []Project, extra ...string) ([]string, error) {
	bl, ok := repo.(BranchLister)
	if !ok {
		return nil, errors.New("the GitLab reader cannot list branches")
	}
	set := map[string]bool{}
	for _, ref := range extra {
		if d := digestOf(ref); d != "" {
			set[d] = true
		}
	}
	for _, proj := range projects {
		branches, err := bl.Branches(ctx, proj.Path)
		if err != nil {
			return nil, fmt.Errorf("listing the branches of %s: %w", proj.Path, err)
		}
		for _, b := range branches {
			pins, err := readPins(ctx, repo, find, image, proj, b)
			if err != nil {
				return nil, err
			}
			for _, pin := range pins {
				if pin.Digest != "" {
					set[pin.Digest] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

// noSpace reports whether err is a full filesystem.
func noSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// noRoom is the one-line failure of an image that does not fit even after
// collecting: the filesystem's numbers, what was collected, and the
// staging's own error (what the image needs, when it could tell).
func (p *passRun) noRoom(digest string, collected *CollectReport, cause error) error {
	sp := Space{}
	if c := p.r.opts.Collector; c != nil {
		if s, err := c.Space(); err == nil {
			sp = s
		}
	}
	freed := "nothing could be collected"
	if collected != nil {
		freed = fmt.Sprintf("after collecting %s (%d paths)", human(collected.BytesFreed), collected.PathsDeleted)
	}
	err := fmt.Errorf("%s does not fit in the store at %s: %s free of %s, %s; min_free is %s",
		p.ref(digest), sp.Dir, human(sp.Free), human(sp.Total), freed, human(sp.MinFree))
	if cause != nil {
		first, _, _ := strings.Cut(cause.Error(), "\n")
		err = fmt.Errorf("%w (%s)", err, first)
	}
	return err
}

// human formats n bytes for people.
func human(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }
