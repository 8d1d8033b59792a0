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
	if l, ok := c.str("labels"); ok {
		mr.Labels = splitLabels(l)
	}
	if l, ok := c.str("add_labels"); ok {
		for _, x := range splitLabels(l) {
			if !slices.Contains(mr.Labels, x) {
				mr.Labels = append(mr.Labels, x)
			}
		}
	}
	if l, ok := c.str("remove_labels"); ok {
		mr.Labels = slices.DeleteFunc(mr.Labels, func(x string) bool { return slices.Contains(splitLabels(l), x) })
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

func (s *Server) acceptMR(c *call) {
	p, mr := s.mergeRequest(c)
	if mr == nil {
		return
	}
	if mr.State != "opened" {
		c.error(http.StatusMethodNotAllowed, "405 Method Not Allowed")
		return
	}
	sha, _ := c.str("sha")
	if sha != "" && sha != p.mrHead(mr) {
		c.error(http.StatusConflict, "SHA does not match HEAD of source branch: "+p.mrHead(mr))
		return
	}
	if v, ok := c.boolean("should_remove_source_branch"); ok {
		mr.RemoveSource = v
	}
	auto, _ := c.boolean("auto_merge")
	mwps, _ := c.boolean("merge_when_pipeline_succeeds")
	if pl := p.latestPipeline(p.mrHead(mr)); (auto || mwps) && pl != nil && !finished(pl.Status) {
		mr.AutoMerge, mr.AutoMergeUser, mr.Updated = true, c.user, s.now().UTC()
		c.json(http.StatusOK, s.mrDetail(p, mr))
		return
	} else if pl != nil && pl.Status == "failed" {
		c.error(http.StatusMethodNotAllowed, "405 Method Not Allowed")
		return
	}
	if _, err := s.merge(p, mr, c.user, ""); err != nil {
		c.error(http.StatusNotAcceptable, "Branch cannot be merged")
		return
	}
	c.json(http.StatusOK, s.mrDetail(p, mr))
}

// merge creates the merge commit on the target branch, marks the MR merged
// and fires the push and merge request hooks.
func (s *Server) merge(p *project, mr *mergeRequest, by *user, msg string) (string, error) {
	srcHead, tgtHead := p.branches[mr.SourceBranch], p.branches[mr.TargetBranch]
	if srcHead == "" || tgtHead == "" {
		return "", fmt.Errorf("merging !%d: source or target branch is gone", mr.IID)
	}
	tree, err := p.threeWay(tgtHead, srcHead)
	if err != nil {
		return "", fmt.Errorf("merging !%d: %w", mr.IID, err)
	}
	if msg == "" {
		msg = fmt.Sprintf("Merge branch '%s' into '%s'\n\n%s\n\nSee merge request %s!%d", mr.SourceBranch, mr.TargetBranch, mr.Title, p.Path, mr.IID)
	}
	cm := s.newCommit(p, []string{tgtHead, srcHead}, tree, by, by, msg)
	p.branches[mr.TargetBranch] = cm.ID
	now := s.now().UTC()
	mr.State, mr.SHA, mr.MergeCommitSHA, mr.MergedAt, mr.MergedBy, mr.Updated = "merged", srcHead, cm.ID, &now, by, now
	mr.AutoMerge = false
	s.firePush(p, by, mr.TargetBranch, tgtHead, cm.ID, []*commit{cm})
	if mr.RemoveSource {
		delete(p.branches, mr.SourceBranch)
		s.firePush(p, by, mr.SourceBranch, srcHead, zeroSHA, nil)
	}
	s.fireMR(p, mr, by, "merge")
	return cm.ID, nil
}

// threeWay merges the trees of two commits file by file against their
// nearest common ancestor; a file changed differently on both sides is a
// conflict.
func (p *project) threeWay(ours, theirs string) (map[string][]byte, error) {
	a, b := p.ancestors(ours), p.ancestors(theirs)
	base, best := "", -1
	for sha, d := range b {
		if da, ok := a[sha]; ok && (best < 0 || da+d < best) {
			base, best = sha, da+d
		}
	}
	var baseTree map[string][]byte
	if base != "" {
		baseTree = p.commits[base].Tree
	}
	o, t := p.commits[ours].Tree, p.commits[theirs].Tree
	out := map[string][]byte{}
	names := map[string]bool{}
	for _, tr := range []map[string][]byte{baseTree, o, t} {
		for n := range tr {
			names[n] = true
		}
	}
	for n := range names {
		bv, bok := baseTree[n]
		ov, ook := o[n]
		tv, tok := t[n]
		same := func(x []byte, xok bool, y []byte, yok bool) bool { return xok == yok && string(x) == string(y) }
		var v []byte
		var ok bool
		switch {
		case same(ov, ook, tv, tok), same(bv, bok, tv, tok):
			v, ok = ov, ook
		case same(bv, bok, ov, ook):
			v, ok = tv, tok
		default:
			return nil, fmt.Errorf("conflict in %s", n)
		}
		if ok {
			out[n] = v
		}
	}
	return out, nil
}
