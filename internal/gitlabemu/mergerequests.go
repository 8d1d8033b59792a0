package gitlabemu

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func init() {
	handle(http.MethodGet, "projects/:id/merge_requests", (*Server).listMRs)
	handle(http.MethodPost, "projects/:id/merge_requests", (*Server).createMR)
	handle(http.MethodGet, "projects/:id/merge_requests/:iid", (*Server).getMR)
	handle(http.MethodPut, "projects/:id/merge_requests/:iid", (*Server).updateMR)
	handle(http.MethodPut, "projects/:id/merge_requests/:iid/merge", (*Server).acceptMR)
}

type mergeRequest struct {
	ID, IID                    int64
	Title, Description         string
	SourceBranch, TargetBranch string
	Labels                     []string
	State                      string // opened, closed, merged
	Author                     *user
	Assignees                  []*user
	Created, Updated           time.Time
	MergedAt, ClosedAt         *time.Time
	MergedBy, ClosedBy         *user
	SHA                        string // head when merged or closed
	MergeCommitSHA             string
	AutoMerge                  bool
	AutoMergeUser              *user
	RemoveSource               bool
	Notes                      []*note
}

// mrHead is the MR's head commit: the source branch head while open.
func (p *project) mrHead(mr *mergeRequest) string {
	if mr.State == "opened" {
		if sha, ok := p.branches[mr.SourceBranch]; ok {
			return sha
		}
	}
	return mr.SHA
}

// mrCommits is the set of the MR's commits: reachable from its head but
// not from its target branch.
func (p *project) mrCommits(mr *mergeRequest) map[string]int {
	out := p.ancestors(p.mrHead(mr))
	if mr.State == "opened" {
		for sha := range p.ancestors(p.branches[mr.TargetBranch]) {
			delete(out, sha)
		}
	}
	return out
}

// mergeRequest resolves :id and :iid or answers 404.
func (s *Server) mergeRequest(c *call) (*project, *mergeRequest) {
	p := s.project(c)
	if p == nil {
		return nil, nil
	}
	for _, mr := range p.mrs {
		if strconv.FormatInt(mr.IID, 10) == c.params["iid"] {
			return p, mr
		}
	}
	c.error(http.StatusNotFound, "404 Not found")
	return nil, nil
}

func (s *Server) listMRs(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	q := c.r.URL.Query()
	state := q.Get("state")
	var labels []string
	if l := q.Get("labels"); l != "" {
		labels = strings.Split(l, ",")
	}
	out := []mrJSON{}
	for i := len(p.mrs) - 1; i >= 0; i-- {
		mr := p.mrs[i]
		if state != "" && state != "all" && state != mr.State ||
			q.Get("source_branch") != "" && q.Get("source_branch") != mr.SourceBranch ||
			q.Get("target_branch") != "" && q.Get("target_branch") != mr.TargetBranch {
			continue
		}
		if !containsAll(mr.Labels, labels) {
			continue
		}
		out = append(out, s.mrJSON(p, mr))
	}
	c.json(http.StatusOK, paginate(c, out))
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, strings.TrimSpace(w)) {
			return false
		}
	}
	return true
}

func (s *Server) getMR(c *call) {
	if p, mr := s.mergeRequest(c); mr != nil {
		c.json(http.StatusOK, s.mrDetail(p, mr))
	}
}

func (s *Server) createMR(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	src, _ := c.str("source_branch")
	tgt, _ := c.str("target_branch")
	title, _ := c.str("title")
	if src == "" || tgt == "" || title == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "source_branch, target_branch, title are missing"})
		return
	}
	for _, b := range []string{src, tgt} {
		if _, ok := p.branches[b]; !ok {
			c.json(http.StatusBadRequest, map[string][]string{"message": {fmt.Sprintf("Branch %q does not exist", b)}})
			return
		}
	}
	for _, mr := range p.mrs {
		if mr.State == "opened" && mr.SourceBranch == src && mr.TargetBranch == tgt {
			c.json(http.StatusConflict, map[string][]string{"message": {
				fmt.Sprintf("Another open merge request already exists for this source branch: !%d", mr.IID)}})
			return
		}
	}
	now := s.now().UTC()
	p.nextIID++
	mr := &mergeRequest{
		ID: s.id("mr"), IID: p.nextIID, Title: title, SourceBranch: src, TargetBranch: tgt,
		State: "opened", Author: c.user, Created: now, Updated: now,
	}
	mr.Description, _ = c.str("description")
	mr.RemoveSource, _ = c.boolean("remove_source_branch")
	s.setMRFields(c, mr)
	p.mrs = append(p.mrs, mr)
	s.fireMR(p, mr, c.user, "open")
	c.json(http.StatusCreated, s.mrDetail(p, mr))
}

// setMRFields applies labels and assignees given in the request.
func (s *Server) setMRFields(c *call, mr *mergeRequest) {
	if l, ok := c.labels("labels"); ok {
		mr.Labels = l
	}
	if l, ok := c.labels("add_labels"); ok {
		for _, x := range l {
			if !slices.Contains(mr.Labels, x) {
				mr.Labels = append(mr.Labels, x)
			}
		}
		slices.Sort(mr.Labels)
	}
	if l, ok := c.labels("remove_labels"); ok {
		mr.Labels = slices.DeleteFunc(mr.Labels, func(x string) bool { return slices.Contains(l, x) })
	}
	var ids []int64
	if v, ok := c.body["assignee_ids"].([]any); ok {
		for _, x := range v {
			if n, err := strconv.ParseInt(fmt.Sprint(x), 10, 64); err == nil {
				ids = append(ids, n)
			}
		}
	} else if v, ok := c.str("assignee_id"); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			ids = append(ids, n)
		}
	}
	if ids != nil {
		mr.Assignees = nil
		for _, id := range ids {
			if u := s.users[id]; u != nil {
				mr.Assignees = append(mr.Assignees, u)
			}
		}
	}
}

// labels reads a label list given as "a,b" or as an array.
func (c *call) labels(name string) ([]string, bool) {
	if v, ok := c.body[name].([]any); ok {
		var parts []string
		for _, x := range v {
			parts = append(parts, fmt.Sprint(x))
		}
		return splitLabels(strings.Join(parts, ",")), true
	}
	l, ok := c.str(name)
	return splitLabels(l), ok
}

func splitLabels(l string) []string {
	out := []string{}
	for _, x := range strings.Split(l, ",") {
		if x = strings.TrimSpace(x); x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) updateMR(c *call) {
	p, mr := s.mergeRequest(c)
	if mr == nil {
		return
	}
	if v, ok := c.str("title"); ok {
		mr.Title = v
	}
	if v, ok := c.str("description"); ok {
		mr.Description = v
	}
	s.setMRFields(c, mr)
	mr.Updated = s.now().UTC()
	switch ev, _ := c.str("state_event"); ev {
	case "close":
		if mr.State == "opened" {
			s.closeMR(p, mr, c.user)
		}
	case "reopen":
		if mr.State == "closed" {
			mr.State, mr.ClosedAt, mr.ClosedBy = "opened", nil, nil
			s.fireMR(p, mr, c.user, "reopen")
		}
	}
	c.json(http.StatusOK, s.mrDetail(p, mr))
}

func (s *Server) closeMR(p *project, mr *mergeRequest, by *user) {
	now := s.now().UTC()
	mr.SHA = p.mrHead(mr)
	mr.State, mr.ClosedAt, mr.ClosedBy, mr.AutoMerge = "closed", &now, by, false
	s.fireMR(p, mr, by, "close")
}
