package propose

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
	"gitlab.com/hydrafy/hydrafy/config"
)

// survey reads the project, its files on the default branch and the
// merge requests of its proposal branch.
func (p *Proposer) survey(ctx context.Context, proj config.Project, t Target, log *slog.Logger) *plan {
	pl := &plan{proj: proj, log: log, branch: BranchName(p.opts.Propose.BranchPrefix, t.Image)}
	project, _, err := p.gl.Projects.GetProject(proj.Path, nil, gitlab.WithContext(ctx))
	if err != nil {
		pl.fail("reading project "+proj.Path, err)
		return pl
	}
	pl.defaultBranch = project.DefaultBranch
	files := proj.Files
	if len(files) == 0 {
		files = config.DefaultFiles
	}
	for _, name := range files {
		f, _, err := p.gl.RepositoryFiles.GetFile(proj.Path, name, &gitlab.GetFileOptions{Ref: &pl.defaultBranch}, gitlab.WithContext(ctx))
		if errors.Is(err, gitlab.ErrNotFound) {
			pl.missing = append(pl.missing, name)
			continue
		}
		if err != nil {
			pl.fail("reading "+name, err)
			return pl
		}
		src, err := base64.StdEncoding.DecodeString(f.Content)
		if err != nil {
			pl.fail("decoding "+name, err)
			return pl
		}
		pl.defaultHead = f.CommitID
		fc, n, err := rewrite(name, src, t)
		if err != nil {
			pl.fail("pinning "+name, err)
			return pl
		}
		skipped, err := pin.Unpinnable(src, t.Image)
		if err != nil {
			pl.fail("pinning "+name, err)
			return pl
		}
		for _, s := range skipped {
			pl.unpinnable = append(pl.unpinnable, unpinnable{File: name, Skipped: s})
		}
		pl.refs += n
		if fc != nil {
			pl.files = append(pl.files, *fc)
		}
	}
	mrs, _, err := p.gl.MergeRequests.ListProjectMergeRequests(proj.Path, &gitlab.ListProjectMergeRequestsOptions{
		SourceBranch: &pl.branch, State: gitlab.Ptr("all")}, gitlab.WithContext(ctx))
	if err != nil {
		pl.fail("listing merge requests", err)
		return pl
	}
	if legacy := legacyBranchName(p.opts.Propose.BranchPrefix, t.Image); legacy != pl.branch {
		old, _, err := p.gl.MergeRequests.ListProjectMergeRequests(proj.Path, &gitlab.ListProjectMergeRequestsOptions{
			SourceBranch: &legacy, State: gitlab.Ptr("opened")}, gitlab.WithContext(ctx))
		if err != nil {
			pl.fail("listing merge requests", err)
			return pl
		}
		for _, mr := range old {
			if proposedDigest(mr.Description) != "" {
				pl.legacyMR = mr
				break
			}
		}
	}
	for _, mr := range mrs {
		switch mr.State {
		case "opened":
			pl.openMR = mr
		case "merged":
			pl.pastMRs++
			if pl.lastMerged == nil || mr.IID > pl.lastMerged.IID {
				pl.lastMerged = mr
			}
		case "closed":
			pl.pastMRs++
			if d := proposedDigest(mr.Description); d != "" {
				pl.closedDigests = append(pl.closedDigests, d)
			}
		}
	}
	return pl
}

// rewrite pins the references of t.Image in src and returns the change
// (nil when the file already pins t.Digest) and the number of references.
func rewrite(name string, src []byte, t Target) (*fileChange, int, error) {
	refs, err := pin.References(src, t.Image)
	if err != nil {
		return nil, 0, err
	}
	out, changes, err := pin.Rewrite(src, t.pinOptions())
	if err != nil {
		return nil, 0, err
	}
	if len(changes) == 0 {
		return nil, len(refs), nil
	}
	fc := &fileChange{Path: name, Content: string(out), Before: string(src), Refs: len(refs), Changed: len(changes)}
	for _, c := range changes {
		if t.VersionTag == "" && pin.IsVersionTag(c.Tag) {
			fc.KeptVersions++
		}
	}
	for _, r := range refs {
		if r.Digest != t.Digest && !slices.Contains(fc.Old, r.Digest) {
			fc.Old = append(fc.Old, r.Digest)
		}
	}
	return fc, len(refs), nil
}
