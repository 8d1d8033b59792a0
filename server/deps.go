package server

import (
	"context"
	"time"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Reconciler is the loop the server triggers and reports on.
type Reconciler interface {
	// Run runs queued passes until ctx ends, finishing the pass under way.
	Run(ctx context.Context) error
	// Trigger queues a pass, or joins one queued and not started.
	Trigger(reconciler.Reason) *reconciler.Ticket
	// Status returns a snapshot for /status.
	Status() reconciler.Status
	// LookupDefaultBranch is a watched project's default branch: the one
	// a pass last observed, else GitLab's answer (asked once for
	// concurrent callers). Webhooks without project.default_branch ask it.
	LookupDefaultBranch(ctx context.Context, project string) (string, error)
}

// Watcher runs one watch and propose pass.
type Watcher interface {
	Pass(ctx context.Context) (WatchResult, error)
}

// WatchResult is what a watch and propose pass found and did.
type WatchResult struct {
	// Digest is the tracked tag's index digest.
	Digest string `json:"digest"`
	// Changed says the digest differs from the one tracked before.
	Changed       bool           `json:"changed"`
	MergeRequests []MergeRequest `json:"merge_requests"`
}

// MergeRequest is the proposer's merge request in one project.
type MergeRequest struct {
	Project string `json:"project"`
	// IID and URL name the open merge request; none when the project is
	// up to date.
	IID int    `json:"iid,omitempty"`
	URL string `json:"url,omitempty"`
	// Action is "opened", "updated", "unchanged" or "up-to-date" (the
	// default branch pins the digest already).
	Action string `json:"action"`
	// LastMerged is the project's most recently merged proposal, when
	// there is one: after a merge, the project is "up-to-date" and this
	// names the merge request that made it so.
	LastMerged *MergedRequest `json:"last_merged,omitempty"`
}

// MergedRequest is a merged proposal.
type MergedRequest struct {
	IID      int       `json:"iid"`
	URL      string    `json:"url,omitempty"`
	Title    string    `json:"title,omitempty"`
	MergedAt time.Time `json:"merged_at,omitzero"`
}

// Check is one readiness condition.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}
