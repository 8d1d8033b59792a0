package reconciler

import (
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Status is a snapshot of the reconciler for /status.
type Status struct {
	Seeded   []Seeded          `json:"seeded"`
	Stalled  map[string]string `json:"stalled,omitempty"`
	Observed Observation       `json:"observed"`
	InFlight *InFlight         `json:"in_flight,omitempty"`
	// Current is the pass under way, as far as it got.
	Current *Report `json:"current,omitempty"`
	// Queued says another pass will run after the current one.
	Queued bool `json:"queued"`
	// Last is the last finished pass.
	Last *Report `json:"last,omitempty"`
	// Runs are the last finished passes kept in state, newest last.
	Runs []Report `json:"runs,omitempty"`
	// StoreFreeBytes is the free space of the live store's filesystem
	// (what an unprivileged writer may use); nil when it cannot be read.
	StoreFreeBytes *int64 `json:"store_free_bytes,omitempty"`
	// LastGC is the last garbage collection.
	LastGC *CollectReport `json:"last_gc,omitempty"`
}

// Status returns a snapshot that the caller may keep.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state.clone()
	s := Status{
		Seeded:   st.Seeded,
		Stalled:  st.Stalled,
		Observed: st.Observed,
		InFlight: st.InFlight,
		Queued:   r.next != nil,
		LastGC:   st.LastGC,
	}
	if r.current != nil {
		c := cloneReport(*r.current)
		s.Current = &c
	}
	if n := len(st.Runs); n > 0 {
		s.Last = &st.Runs[n-1]
		s.Runs = st.Runs
	}
	if free, err := FreeBytes(r.opts.StoreDir); err == nil {
		s.StoreFreeBytes = &free
	}
	return s
}

// FreeBytes returns the free space of the filesystem that holds dir, as
// df shows it (blocks available to unprivileged users).
func FreeBytes(dir string) (int64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, fmt.Errorf("reading the free space of %s: %w", dir, err)
	}
	return int64(fs.Bavail) * fs.Bsize, nil
}

// DefaultBranch returns the default branch last observed for a watched
// project, or "" when unknown.
func (r *Reconciler) DefaultBranch(project string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.state.Observed.Projects {
		if strings.EqualFold(p.Path, project) {
			return p.Branch
		}
	}
	return ""
}

func cloneReport(rep Report) Report {
	b, err := json.Marshal(rep)
	if err != nil {
		panic(fmt.Sprintf("encoding report: %v", err))
	}
	var c Report
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("decoding report: %v", err))
	}
	return c
}

// Seed makes ref (IMAGE@sha256:…), the digest the watcher is about to
// propose, a desired digest and triggers a pass that seeds it, so that
// the merge requests' pipelines find its store. It replaces the previous
// candidate.
func (r *Reconciler) Seed(ref string) (*Ticket, error) {
	if digestOf(ref) == "" {
		return nil, fmt.Errorf("seeding %q: not a digest reference", ref)
	}
	r.mu.Lock()
	r.state.Candidate = ref
	r.mu.Unlock()
	if err := r.persist(); err != nil {
		return nil, err
	}
	return r.Trigger(Reason{Kind: KindProposal, Detail: "seed " + ref + " before proposing it"}), nil
}

// IsSeeded reports whether the live store holds digest, as far as the
// state knows.
func (r *Reconciler) IsSeeded(digest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.seededSet()[digest]
}
