package propose

import (
	"fmt"
	"strings"
	"time"
)

// Action says what a pass did for one project.
type Action string

// The actions a pass reports.
const (
	// UpToDate: the default branch already pins the digest everywhere.
	UpToDate Action = "up-to-date"
	// Unchanged: the open merge request already proposes the digest.
	Unchanged Action = "unchanged"
	// Opened: a new merge request was opened.
	Opened Action = "opened"
	// Updated: the branch and merge request were refreshed.
	Updated Action = "updated"
	// Commented: a human pushed to the branch, so the merge request got a
	// comment instead of a force-push.
	Commented Action = "commented"
	// HumanPushed: a human pushed to the branch and was already told.
	HumanPushed Action = "human-pushed"
	// Declined: the project closed a proposal of this digest unmerged.
	Declined Action = "declined"
	// Capped: max_open merge requests are open already.
	Capped Action = "capped"
	// NoReferences: the files hold no reference of the image.
	NoReferences Action = "no-references"
	// WouldPropose: a preview found files to pin (nothing was written).
	WouldPropose Action = "would-propose"
	// Failed: see the report's Err.
	Failed Action = "failed"
)

// Report is the outcome of one pass.
type Report struct {
	Image, Digest string
	Projects      []ProjectReport
}

// ProjectReport is the outcome of a pass for one project.
type ProjectReport struct {
	Path   string
	Action Action
	// MR is the merge request's iid and URL, when there is one.
	MR    int64
	MRURL string
	// AutoMerge is "set", "waiting for a pipeline" or "".
	AutoMerge string
	// Missing lists configured files that the default branch lacks.
	Missing []string
	// Warnings are problems that did not stop the project (an unknown
	// assignee, say).
	Warnings []string
	// Unpinnable lists the references of the image that cannot be pinned,
	// "FILE:LINE: REFERENCE: reason".
	Unpinnable []string
	// Files are the files the proposal rewrites, before and after.
	Files []FileDiff
	// LastMerged is the project's most recent merged proposal, if any.
	LastMerged *Merged
	// Superseded is the iid of the open proposal of the old branch name
	// that this pass closed in favour of MR; 0 when none.
	Superseded int64
	// Err is why the project failed; nil unless Action is Failed.
	Err error
}

// FileDiff is one file of a proposal.
type FileDiff struct {
	Path          string
	Before, After string
}

// Merged is a merged proposal.
type Merged struct {
	IID   int64
	URL   string
	Title string
	// At is when it was merged; zero when GitLab did not say.
	At time.Time
}

// Failed returns the reports of projects that failed.
func (r Report) Failed() []ProjectReport {
	var out []ProjectReport
	for _, p := range r.Projects {
		if p.Err != nil {
			out = append(out, p)
		}
	}
	return out
}

// String renders the report as one line per project.
func (p ProjectReport) String() string {
	s := fmt.Sprintf("%s: %s", p.Path, p.Action)
	if p.MR != 0 {
		s += fmt.Sprintf(" !%d %s", p.MR, p.MRURL)
	}
	if p.AutoMerge != "" {
		s += " (auto-merge " + p.AutoMerge + ")"
	}
	if p.Err != nil {
		s += ": " + p.Err.Error()
	}
	if m := p.LastMerged; m != nil && p.Action != Opened && p.Action != Updated {
		s += fmt.Sprintf(" (last merged: !%d %s)", m.IID, m.URL)
	}
	if p.Superseded != 0 {
		s += fmt.Sprintf(" (closed !%d of the old branch name)", p.Superseded)
	}
	for _, u := range p.Unpinnable {
		s += "\n  not pinned: " + u
	}
	return s
}

// String renders the report as one line per project.
func (r Report) String() string {
	var b strings.Builder
	for _, p := range r.Projects {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}
