package propose

import (
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
