package gitlabemu

import (
	"strconv"
	"time"
)

// mrJSON is GitLab's merge request entity.
type mrJSON struct {
	ID                        int64          `json:"id"`
	IID                       int64          `json:"iid"`
	ProjectID                 int64          `json:"project_id"`
	Title                     string         `json:"title"`
	Description               string         `json:"description"`
	State                     string         `json:"state"`
	CreatedAt                 time.Time      `json:"created_at"`
	UpdatedAt                 time.Time      `json:"updated_at"`
	MergedBy                  *userJSON      `json:"merged_by"`
	MergeUser                 *userJSON      `json:"merge_user"`
	MergedAt                  *time.Time     `json:"merged_at"`
	ClosedBy                  *userJSON      `json:"closed_by"`
	ClosedAt                  *time.Time     `json:"closed_at"`
	TargetBranch              string         `json:"target_branch"`
	SourceBranch              string         `json:"source_branch"`
	UserNotesCount            int            `json:"user_notes_count"`
	Upvotes                   int            `json:"upvotes"`
	Downvotes                 int            `json:"downvotes"`
	Author                    userJSON       `json:"author"`
	Assignee                  *userJSON      `json:"assignee"`
	Assignees                 []userJSON     `json:"assignees"`
	Reviewers                 []userJSON     `json:"reviewers"`
	SourceProjectID           int64          `json:"source_project_id"`
	TargetProjectID           int64          `json:"target_project_id"`
	Labels                    []string       `json:"labels"`
	Draft                     bool           `json:"draft"`
	WorkInProgress            bool           `json:"work_in_progress"`
	MergeWhenPipelineSucceeds bool           `json:"merge_when_pipeline_succeeds"`
	MergeStatus               string         `json:"merge_status"`
	DetailedMergeStatus       string         `json:"detailed_merge_status"`
	SHA                       string         `json:"sha"`
	MergeCommitSHA            *string        `json:"merge_commit_sha"`
	SquashCommitSHA           *string        `json:"squash_commit_sha"`
	ShouldRemoveSourceBranch  *bool          `json:"should_remove_source_branch"`
	ForceRemoveSourceBranch   bool           `json:"force_remove_source_branch"`
	Reference                 string         `json:"reference"`
	References                map[string]any `json:"references"`
	WebURL                    string         `json:"web_url"`
	Squash                    bool           `json:"squash"`
	HasConflicts              bool           `json:"has_conflicts"`
}

// mrDetailJSON is the single merge request entity: the list entity plus
// pipelines and counts.
type mrDetailJSON struct {
	mrJSON
	HeadPipeline *pipelineJSON `json:"head_pipeline"`
	Pipeline     *pipelineJSON `json:"pipeline"`
	ChangesCount string        `json:"changes_count"`
}

func (s *Server) mrDetail(p *project, mr *mergeRequest) mrDetailJSON {
	d := mrDetailJSON{mrJSON: s.mrJSON(p, mr), ChangesCount: "1"}
	if pl := p.latestPipeline(d.SHA); pl != nil {
		pj := s.pipelineJSON(p, pl)
		d.HeadPipeline, d.Pipeline = &pj, &pj
	}
	return d
}

func (s *Server) mrJSON(p *project, mr *mergeRequest) mrJSON {
	ref := "!" + strconv.FormatInt(mr.IID, 10)
	j := mrJSON{
		ID: mr.ID, IID: mr.IID, ProjectID: p.ID, Title: mr.Title, Description: mr.Description,
		State: mr.State, CreatedAt: mr.Created, UpdatedAt: mr.Updated, MergedAt: mr.MergedAt,
		ClosedAt: mr.ClosedAt, TargetBranch: mr.TargetBranch, SourceBranch: mr.SourceBranch,
		UserNotesCount: len(mr.Notes), Author: s.userJSON(mr.Author), Assignees: []userJSON{},
		Reviewers: []userJSON{}, SourceProjectID: p.ID, TargetProjectID: p.ID,
		Labels: append([]string{}, mr.Labels...), MergeWhenPipelineSucceeds: mr.AutoMerge,
		MergeStatus: "can_be_merged", DetailedMergeStatus: "mergeable", SHA: p.mrHead(mr),
		ShouldRemoveSourceBranch: &mr.RemoveSource, Reference: ref,
		References: map[string]any{"short": ref, "relative": ref, "full": p.Path + ref},
		WebURL:     s.projectURL(p) + "/-/merge_requests/" + strconv.FormatInt(mr.IID, 10),
	}
	for _, u := range mr.Assignees {
		j.Assignees = append(j.Assignees, s.userJSON(u))
	}
	if len(j.Assignees) > 0 {
		j.Assignee = &j.Assignees[0]
	}
	if mr.MergedBy != nil {
		u := s.userJSON(mr.MergedBy)
		j.MergedBy, j.MergeUser = &u, &u
	} else if mr.AutoMergeUser != nil {
		u := s.userJSON(mr.AutoMergeUser)
		j.MergeUser = &u
	}
	if mr.ClosedBy != nil {
		u := s.userJSON(mr.ClosedBy)
		j.ClosedBy = &u
	}
	if mr.MergeCommitSHA != "" {
		j.MergeCommitSHA = &mr.MergeCommitSHA
	}
	switch {
	case mr.State != "opened":
		j.DetailedMergeStatus = "not_open"
	case mr.AutoMerge:
		j.DetailedMergeStatus = "ci_still_running"
	}
	return j
}
