package propose

import (
	"context"
	"slices"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// labels are the configured labels for the project, sorted, no duplicates.
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

// openMR opens the proposal merge request of the pushed branch.
func (p *Proposer) openMR(ctx context.Context, pl *plan, t Target) error {
	opt := &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr(Title(t)), Description: gitlab.Ptr(description(t, pl.files, pl.unpinnable)),
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
	if desc := description(t, pl.files, pl.unpinnable); mr.Description != desc {
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
// the merge request's head; until then a later pass retries. Set earlier,
// GitLab may merge at once, before any pipeline ran.
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
		// Both names: auto_merge since GitLab 17.11, the older one before;
		// an instance that knew neither would merge at once.
		AutoMerge: gitlab.Ptr(true), MergeWhenPipelineSucceeds: gitlab.Ptr(true), SHA: &mr.SHA}, gitlab.WithContext(ctx))
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

// supersede closes the open proposal of the old branch name, with a note
// that names its successor, once the new branch's merge request exists.
func (p *Proposer) supersede(ctx context.Context, pl *plan) {
	old := pl.legacyMR
	if old == nil || pl.mr == nil || pl.err != nil {
		return
	}
	if _, _, err := p.gl.Notes.CreateMergeRequestNote(pl.proj.Path, old.IID, &gitlab.CreateMergeRequestNoteOptions{
		Body: gitlab.Ptr(supersededNote(pl.branch, pl.mr.IID))}, gitlab.WithContext(ctx)); err != nil {
		pl.warnings = append(pl.warnings, explain("commenting on !"+itoa(old.IID), err).Error())
		return
	}
	if _, _, err := p.gl.MergeRequests.UpdateMergeRequest(pl.proj.Path, old.IID, &gitlab.UpdateMergeRequestOptions{
		StateEvent: gitlab.Ptr("close")}, gitlab.WithContext(ctx)); err != nil {
		pl.warnings = append(pl.warnings, explain("closing !"+itoa(old.IID), err).Error())
		return
	}
	pl.superseded = old.IID
	pl.log.Info("closed the proposal of the old branch name", "iid", old.IID, "successor", pl.mr.IID)
}
