package gitlabemu

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func init() {
	handle(http.MethodGet, "projects/:id/pipelines", (*Server).listPipelines)
	handle(http.MethodGet, "projects/:id/pipelines/:pipeline", (*Server).getPipeline)
	handle(http.MethodGet, "projects/:id/merge_requests/:iid/pipelines", (*Server).listMRPipelines)
}

type pipeline struct {
	ID, IID          int64
	SHA, Ref, Status string
	Created, Updated time.Time
}

// pipelineJSON is GitLab's basic pipeline entity.
type pipelineJSON struct {
	ID        int64     `json:"id"`
	IID       int64     `json:"iid"`
	ProjectID int64     `json:"project_id"`
	SHA       string    `json:"sha"`
	Ref       string    `json:"ref"`
	Status    string    `json:"status"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	WebURL    string    `json:"web_url"`
}

func (s *Server) pipelineJSON(p *project, pl *pipeline) pipelineJSON {
	return pipelineJSON{
		ID: pl.ID, IID: pl.IID, ProjectID: p.ID, SHA: pl.SHA, Ref: pl.Ref, Status: pl.Status,
		Source: "push", CreatedAt: pl.Created, UpdatedAt: pl.Updated,
		WebURL: s.projectURL(p) + "/-/pipelines/" + strconv.FormatInt(pl.ID, 10),
	}
}

// latestPipeline is the newest pipeline of commit sha, or nil.
func (p *project) latestPipeline(sha string) *pipeline {
	for i := len(p.pipelines) - 1; i >= 0; i-- {
		if p.pipelines[i].SHA == sha {
			return p.pipelines[i]
		}
	}
	return nil
}

// SetPipeline creates a pipeline for commit sha (or updates the newest one
// of that commit) with status ("created", "running", "success", "failed",
// …) and returns its id. A successful pipeline merges the merge requests
// set to auto-merge whose head is sha.
func (s *Server) SetPipeline(projectPath, sha, status string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPath(projectPath)
	if p == nil {
		return 0, fmt.Errorf("setting pipeline: project %q not found", projectPath)
	}
	cm := p.resolve(sha)
	if cm == nil {
		return 0, fmt.Errorf("setting pipeline: commit %q not found in %s", sha, projectPath)
	}
	now := s.now().UTC()
	pl := p.latestPipeline(cm.ID)
	if pl == nil || finished(pl.Status) {
		ref := ""
		for name, head := range p.branches {
			if head == cm.ID {
				ref = name
			}
		}
		pl = &pipeline{ID: s.id("pipeline"), IID: int64(len(p.pipelines) + 1), SHA: cm.ID, Ref: ref, Created: now}
		p.pipelines = append(p.pipelines, pl)
	}
	pl.Status, pl.Updated = status, now
	if status == "success" {
		for _, mr := range p.mrs {
			if mr.State == "opened" && mr.AutoMerge && p.branches[mr.SourceBranch] == cm.ID {
				if _, err := s.merge(p, mr, mr.AutoMergeUser, ""); err != nil {
					s.log.Warn("gitlab emulator: auto-merge failed", "project", p.Path, "iid", mr.IID, "err", err)
				}
			}
		}
	}
	return pl.ID, nil
}

func finished(status string) bool {
	switch status {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

func (s *Server) listPipelines(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	q := c.r.URL.Query()
	out := []pipelineJSON{}
	for i := len(p.pipelines) - 1; i >= 0; i-- {
		pl := p.pipelines[i]
		if (q.Get("sha") == "" || q.Get("sha") == pl.SHA) && (q.Get("ref") == "" || q.Get("ref") == pl.Ref) &&
			(q.Get("status") == "" || q.Get("status") == pl.Status) {
			out = append(out, s.pipelineJSON(p, pl))
		}
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) getPipeline(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	for _, pl := range p.pipelines {
		if strconv.FormatInt(pl.ID, 10) == c.params["pipeline"] {
			c.json(http.StatusOK, s.pipelineJSON(p, pl))
			return
		}
	}
	c.error(http.StatusNotFound, "404 Not found")
}

func (s *Server) listMRPipelines(c *call) {
	p, mr := s.mergeRequest(c)
	if mr == nil {
		return
	}
	shas := p.mrCommits(mr)
	out := []pipelineJSON{}
	for i := len(p.pipelines) - 1; i >= 0; i-- {
		if _, ok := shas[p.pipelines[i].SHA]; ok {
			out = append(out, s.pipelineJSON(p, p.pipelines[i]))
		}
	}
	c.json(http.StatusOK, paginate(c, out))
}
