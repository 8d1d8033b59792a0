package propose

import (
	"fmt"
	"log/slog"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
)

// plan is what a pass found for one project (read-only calls) and then did.
type plan struct {
	proj          config.Project
	log           *slog.Logger
	branch        string
	defaultBranch string
	defaultHead   string
	files         []fileChange // files whose references need the digest
	missing       []string
	unpinnable    []unpinnable
	lastMerged    *gitlab.BasicMergeRequest
	legacyMR      *gitlab.BasicMergeRequest // an open proposal of the old branch name
	superseded    int64                     // its iid, once closed
	refs          int
	openMR        *gitlab.BasicMergeRequest
	pastMRs       int // merged or closed merge requests of the branch
	closedDigests []string
	declined      []string

	action    Action
	mr        *gitlab.BasicMergeRequest
	autoMerge string
	warnings  []string
	err       error
}

func (pl *plan) report() ProjectReport {
	r := ProjectReport{Path: pl.proj.Path, Action: pl.action, AutoMerge: pl.autoMerge,
		Missing: pl.missing, Warnings: pl.warnings, Err: pl.err}
	for _, u := range pl.unpinnable {
		r.Unpinnable = append(r.Unpinnable, fmt.Sprintf("%s:%d: %s: %s", u.File, u.Line, u.Raw, u.Reason))
	}
	for _, f := range pl.files {
		r.Files = append(r.Files, FileDiff{Path: f.Path, Before: f.Before, After: f.Content})
	}
	r.Superseded = pl.superseded
	if m := pl.lastMerged; m != nil {
		r.LastMerged = &Merged{IID: m.IID, URL: m.WebURL, Title: m.Title}
		if m.MergedAt != nil {
			r.LastMerged.At = *m.MergedAt
		}
	}
	if pl.err != nil {
		r.Action = Failed
	}
	if pl.mr != nil {
		r.MR, r.MRURL = pl.mr.IID, pl.mr.WebURL
	}
	return r
}

func (pl *plan) fail(action string, err error) {
	pl.err = explain(action, err)
	pl.log.Warn("proposal failed", "err", pl.err)
}
