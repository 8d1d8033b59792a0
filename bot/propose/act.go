package propose

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// act brings the project's branch and merge request in line with t. open
// counts the open proposals across projects, for max_open.
func (p *Proposer) act(ctx context.Context, pl *plan, t Target, open *int) {
	pl.mr = pl.openMR
	if len(pl.files) == 0 {
		pl.action = UpToDate
		if pl.refs == 0 {
			pl.action = NoReferences
		}
		return
	}
	if slices.Contains(pl.declined, t.Digest) {
		pl.action = Declined
		return
	}
	head, err := p.branchHead(ctx, pl)
	if err != nil {
		pl.fail("reading branch "+pl.branch, err)
		return
	}
	human := head != nil && !p.isBot(head)
	if human && pl.openMR != nil {
		p.tellHuman(ctx, pl, t)
		return
	}
	if human && pl.pastMRs == 0 {
		pl.fail("updating branch "+pl.branch, errors.New("the branch holds commits by others and has no merge request of hydrafy's: delete or rename it"))
		return
	}
	if pl.openMR == nil && p.opts.Propose.MaxOpen > 0 && *open >= p.opts.Propose.MaxOpen {
		pl.action = Capped
		return
	}
	current, err := p.branchCurrent(ctx, pl, head, human, t)
	if err != nil {
		pl.fail("reading branch "+pl.branch, err)
		return
	}
	pushed := false
	if !current {
		if err := p.commit(ctx, pl, t); err != nil {
			pl.fail("committing to "+pl.branch, err)
			return
		}
		pushed = true
	}
	if pl.openMR == nil {
		if err := p.openMR(ctx, pl, t); err != nil {
			pl.fail("opening merge request", err)
			return
		}
		*open++
		pl.action = Opened
	} else {
		changed, err := p.refreshMR(ctx, pl, t)
		if err != nil {
			pl.fail("updating merge request !"+itoa(pl.openMR.IID), err)
			return
		}
		pl.action = Unchanged
		if changed || pushed {
			pl.action = Updated
		}
	}
	p.autoMerge(ctx, pl)
}

// branchHead is the head commit of the proposal branch, nil if none.
func (p *Proposer) branchHead(ctx context.Context, pl *plan) (*gitlab.Commit, error) {
	b, _, err := p.gl.Branches.GetBranch(pl.proj.Path, pl.branch, gitlab.WithContext(ctx))
	if errors.Is(err, gitlab.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b.Commit, nil
}

// branchCurrent reports whether the proposal branch already holds the
// proposer's commit for t with the files as they should be. A default
// branch that moved on without touching the files needs no new commit:
// pipelines are not re-run for nothing.
func (p *Proposer) branchCurrent(ctx context.Context, pl *plan, head *gitlab.Commit, human bool, t Target) (bool, error) {
	if head == nil || human || commitDigest(head.Message) != t.Digest {
		return false, nil
	}
	if len(head.ParentIDs) > 0 && head.ParentIDs[0] == pl.defaultHead {
		return true, nil
	}
	for _, f := range pl.files {
		got, _, err := p.gl.RepositoryFiles.GetFile(pl.proj.Path, f.Path, &gitlab.GetFileOptions{Ref: &pl.branch}, gitlab.WithContext(ctx))
		if errors.Is(err, gitlab.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if content, err := base64.StdEncoding.DecodeString(got.Content); err != nil || string(content) != f.Content {
			return false, nil
		}
	}
	return true, nil
}

// isBot reports whether c is a commit the proposer made.
func (p *Proposer) isBot(c *gitlab.Commit) bool {
	return strings.EqualFold(c.AuthorEmail, p.opts.Author.Email) && commitDigest(c.Message) != ""
}

// commit (re)creates the branch from the default branch head with one
// commit that pins every file.
func (p *Proposer) commit(ctx context.Context, pl *plan, t Target) error {
	var actions []*gitlab.CommitActionOptions
	var names []string
	for _, f := range pl.files {
		actions = append(actions, &gitlab.CommitActionOptions{
			Action: gitlab.Ptr(gitlab.FileUpdate), FilePath: gitlab.Ptr(f.Path), Content: gitlab.Ptr(f.Content)})
		names = append(names, f.Path)
	}
	_, _, err := p.gl.Commits.CreateCommit(pl.proj.Path, &gitlab.CreateCommitOptions{
		Branch: &pl.branch, StartSHA: &pl.defaultHead, Force: gitlab.Ptr(true),
		CommitMessage: gitlab.Ptr(commitMessage(t, names)), Actions: actions,
		AuthorName: &p.opts.Author.Name, AuthorEmail: &p.opts.Author.Email,
	}, gitlab.WithContext(ctx))
	if err == nil {
		pl.log.Info("pinned on branch", "branch", pl.branch, "digest", t.Digest)
	}
	return err
}

func (p *Proposer) labels(pl *plan) []string {
	var out []string
	for _, l := range slices.Concat(p.opts.Propose.Labels, pl.proj.Labels) {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func (p *Proposer) openMR(ctx context.Context, pl *plan, t Target) error {
	opt := &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr(Title(t)), Description: gitlab.Ptr(Description(t, pl.files)),
		SourceBranch: &pl.branch, TargetBranch: &pl.defaultBranch, RemoveSourceBranch: gitlab.Ptr(true),
	}
	if l := p.labels(pl); len(l) > 0 {
		opt.Labels = (*gitlab.LabelOptions)(&l)
	}
	if ids := p.assignees(ctx, pl); len(ids) > 0 {
		opt.AssigneeIDs = &ids
	}
	mr, _, err := p.gl.MergeRequests.CreateMergeRequest(pl.proj.Path, opt, gitlab.WithContext(ctx))
	if err != nil {
		return err
	}
	pl.mr = &mr.BasicMergeRequest
	pl.log.Info("opened merge request", "iid", mr.IID, "url", mr.WebURL)
	return nil
}

// assignees resolves the configured usernames; unknown ones are warned about.
func (p *Proposer) assignees(ctx context.Context, pl *plan) []int64 {
	var ids []int64
	for _, name := range pl.proj.Assignees {
		users, _, err := p.gl.Users.ListUsers(&gitlab.ListUsersOptions{Username: gitlab.Ptr(name)}, gitlab.WithContext(ctx))
		if err != nil || len(users) == 0 {
			pl.warnings = append(pl.warnings, "assignee "+name+" not found")
			continue
		}
		ids = append(ids, users[0].ID)
	}
	return ids
}

// refreshMR brings the open merge request's title, description and labels
// in line and reports whether it wrote anything. Labels are only added:
// labels people set stay.
func (p *Proposer) refreshMR(ctx context.Context, pl *plan, t Target) (bool, error) {
	mr := pl.openMR
	opt := &gitlab.UpdateMergeRequestOptions{}
	changed := false
	if title := Title(t); mr.Title != title {
		opt.Title, changed = &title, true
	}
	if desc := Description(t, pl.files); mr.Description != desc {
		opt.Description, changed = &desc, true
	}
	var add gitlab.LabelOptions
	for _, l := range p.labels(pl) {
		if !slices.Contains(mr.Labels, l) {
			add = append(add, l)
		}
	}
	if len(add) > 0 {
		opt.AddLabels, changed = &add, true
	}
	if !changed {
		return false, nil
	}
	up, _, err := p.gl.MergeRequests.UpdateMergeRequest(pl.proj.Path, mr.IID, opt, gitlab.WithContext(ctx))
	if err != nil {
		return false, err
	}
	pl.mr = &up.BasicMergeRequest
	return true, nil
}

// tellHuman comments once per digest on a merge request whose branch has
// commits by others, instead of force-pushing over them.
func (p *Proposer) tellHuman(ctx context.Context, pl *plan, t Target) {
	pl.action = HumanPushed
	if proposedDigest(pl.openMR.Description) == t.Digest {
		return
	}
	notes, _, err := p.gl.Notes.ListMergeRequestNotes(pl.proj.Path, pl.openMR.IID, &gitlab.ListMergeRequestNotesOptions{
		ListOptions: gitlab.ListOptions{PerPage: 100}}, gitlab.WithContext(ctx))
	if err != nil {
		pl.fail("reading notes of !"+itoa(pl.openMR.IID), err)
		return
	}
	for _, n := range notes {
		if strings.Contains(n.Body, humanNoteMarker(t.Digest)) {
			return
		}
	}
	if _, _, err := p.gl.Notes.CreateMergeRequestNote(pl.proj.Path, pl.openMR.IID, &gitlab.CreateMergeRequestNoteOptions{
		Body: gitlab.Ptr(humanNote(t, pl.branch))}, gitlab.WithContext(ctx)); err != nil {
		pl.fail("commenting on !"+itoa(pl.openMR.IID), err)
		return
	}
	pl.action = Commented
	pl.log.Info("branch has commits by others; commented instead of force-pushing", "iid", pl.openMR.IID)
}

// autoMerge sets "merge when pipeline succeeds" once a pipeline exists for
// the merge request's head; until then a later pass retries.
func (p *Proposer) autoMerge(ctx context.Context, pl *plan) {
	enabled := p.opts.Propose.Automerge
	if pl.proj.Automerge != nil {
		enabled = *pl.proj.Automerge
	}
	if !enabled || pl.mr == nil {
		return
	}
	if pl.mr.MergeWhenPipelineSucceeds {
		pl.autoMerge = "set"
		return
	}
	mr, _, err := p.gl.MergeRequests.GetMergeRequest(pl.proj.Path, pl.mr.IID, nil, gitlab.WithContext(ctx))
	if err != nil {
		pl.warnings = append(pl.warnings, explain("reading !"+itoa(pl.mr.IID), err).Error())
		return
	}
	if mr.HeadPipeline == nil || mr.HeadPipeline.SHA != mr.SHA {
		pl.autoMerge = "waiting for a pipeline"
		return
	}
	res, _, err := p.gl.MergeRequests.AcceptMergeRequest(pl.proj.Path, mr.IID, &gitlab.AcceptMergeRequestOptions{
		AutoMerge: gitlab.Ptr(true), SHA: &mr.SHA}, gitlab.WithContext(ctx))
	if err != nil {
		pl.warnings = append(pl.warnings, explain("setting auto-merge on !"+itoa(mr.IID), err).Error())
		return
	}
	pl.mr = &res.BasicMergeRequest
	pl.autoMerge = "set"
	if res.State == "merged" {
		pl.autoMerge = "merged"
	}
}
