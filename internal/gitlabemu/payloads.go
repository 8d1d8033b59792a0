package gitlabemu

import (
	"fmt"
	"strings"
)

// firePush queues Push Hook deliveries; callers hold s.mu.
func (s *Server) firePush(p *project, by *user, branch, before, after string, commits []*commit) {
	var cs []map[string]any
	for _, c := range commits {
		added, modified, removed := changes(p, c)
		title, _, _ := strings.Cut(c.Message, "\n")
		cs = append(cs, map[string]any{
			"id": c.ID, "message": c.Message, "title": title, "timestamp": c.Time,
			"url":    s.projectURL(p) + "/-/commit/" + c.ID,
			"author": map[string]any{"name": c.AuthorName, "email": c.AuthorEmail},
			"added":  added, "modified": modified, "removed": removed,
		})
	}
	if cs == nil {
		cs = []map[string]any{}
	}
	checkout := after
	if after == zeroSHA {
		checkout = ""
	}
	payload := map[string]any{
		"object_kind": "push", "event_name": "push", "before": before, "after": after,
		"ref": "refs/heads/" + branch, "ref_protected": branch == p.DefaultBranch, "checkout_sha": checkout,
		"user_id": by.ID, "user_name": by.Name, "user_username": by.Username, "user_email": by.Email,
		"user_avatar": "", "project_id": p.ID, "project": s.hookProject(p), "repository": s.hookRepository(p),
		"commits": cs, "total_commits_count": len(cs),
	}
	s.fire(p, "Push Hook", payload, func(h *hook) bool { return h.PushEvents })
}

// fireMR queues Merge Request Hook deliveries; callers hold s.mu.
func (s *Server) fireMR(p *project, mr *mergeRequest, by *user, action string) {
	state := map[string]int{"opened": 1, "closed": 2, "merged": 3}[mr.State]
	var assignees []int64
	for _, u := range mr.Assignees {
		assignees = append(assignees, u.ID)
	}
	if assignees == nil {
		assignees = []int64{}
	}
	var mergeCommit any
	if mr.MergeCommitSHA != "" {
		mergeCommit = mr.MergeCommitSHA
	}
	head := p.mrHead(mr)
	attrs := map[string]any{
		"id": mr.ID, "iid": mr.IID, "target_branch": mr.TargetBranch, "source_branch": mr.SourceBranch,
		"source_project_id": p.ID, "target_project_id": p.ID, "author_id": mr.Author.ID,
		"assignee_ids": assignees, "reviewer_ids": []int64{}, "title": mr.Title, "description": mr.Description,
		"created_at": mr.Created, "updated_at": mr.Updated, "state": mr.State, "state_id": state,
		"merge_status": "can_be_merged", "detailed_merge_status": "mergeable", "work_in_progress": false,
		"blocking_discussions_resolved": true, "first_contribution": false,
		"url":    s.projectURL(p) + fmt.Sprintf("/-/merge_requests/%d", mr.IID),
		"source": s.hookProject(p), "target": s.hookProject(p),
		"last_commit":      map[string]any{"id": head, "url": s.projectURL(p) + "/-/commit/" + head},
		"labels":           hookLabels(mr.Labels),
		"action":           action,
		"merge_commit_sha": mergeCommit,
		"system":           false,
	}
	payload := map[string]any{
		"object_kind": "merge_request", "event_type": "merge_request",
		"user":    map[string]any{"id": by.ID, "name": by.Name, "username": by.Username, "email": by.Email, "avatar_url": ""},
		"project": s.hookProject(p), "repository": s.hookRepository(p), "object_attributes": attrs,
		"labels": hookLabels(mr.Labels), "changes": map[string]any{}, "assignees": []any{}, "reviewers": []any{},
	}
	s.fire(p, "Merge Request Hook", payload, func(h *hook) bool { return h.MergeRequests })
}

func hookLabels(labels []string) []map[string]any {
	out := []map[string]any{}
	for _, l := range labels {
		out = append(out, map[string]any{"title": l, "type": "ProjectLabel"})
	}
	return out
}

func changes(p *project, c *commit) (added, modified, removed []string) {
	added, modified, removed = []string{}, []string{}, []string{}
	var parent map[string][]byte
	if len(c.Parents) > 0 {
		parent = p.commits[c.Parents[0]].Tree
	}
	for _, n := range sortedKeys(c.Tree) {
		old, ok := parent[n]
		switch {
		case !ok:
			added = append(added, n)
		case string(old) != string(c.Tree[n]):
			modified = append(modified, n)
		}
	}
	for _, n := range sortedKeys(parent) {
		if _, ok := c.Tree[n]; !ok {
			removed = append(removed, n)
		}
	}
	return added, modified, removed
}

func (s *Server) hookProject(p *project) map[string]any {
	j := s.projectJSON(p)
	return map[string]any{
		"id": p.ID, "name": j.Name, "description": "", "web_url": j.WebURL, "avatar_url": nil,
		"git_ssh_url": j.SSHURLToRepo, "git_http_url": j.HTTPURLToRepo, "namespace": j.Namespace["name"],
		"visibility_level": 0, "path_with_namespace": p.Path, "default_branch": p.DefaultBranch,
		"homepage": j.WebURL, "url": j.SSHURLToRepo, "ssh_url": j.SSHURLToRepo, "http_url": j.HTTPURLToRepo,
	}
}

func (s *Server) hookRepository(p *project) map[string]any {
	j := s.projectJSON(p)
	return map[string]any{
		"name": j.Name, "url": j.SSHURLToRepo, "description": "", "homepage": j.WebURL,
		"git_http_url": j.HTTPURLToRepo, "git_ssh_url": j.SSHURLToRepo, "visibility_level": 0,
	}
}
