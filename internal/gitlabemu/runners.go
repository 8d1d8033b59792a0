package gitlabemu

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func init() {
	handle(http.MethodPost, "runners/verify", (*Server).verifyRunner)
	handle(http.MethodGet, "runners/:rid", (*Server).getRunner)
	handle(http.MethodPut, "runners/:rid", (*Server).updateRunner)
	handle(http.MethodGet, "runners/:rid/jobs", (*Server).listRunnerJobs)
}

type runner struct {
	ID          int64
	Description string
	Token       string
	Paused      bool
}

type job struct {
	ID       int64
	Runner   int64
	Name     string
	Status   string
	Created  time.Time
	Started  *time.Time
	Finished *time.Time
}

// runnerJSON is GitLab's runner details entity.
type runnerJSON struct {
	ID          int64    `json:"id"`
	Description string   `json:"description"`
	Name        string   `json:"name"`
	Paused      bool     `json:"paused"`
	Active      bool     `json:"active"`
	IsShared    bool     `json:"is_shared"`
	RunnerType  string   `json:"runner_type"`
	Online      bool     `json:"online"`
	Status      string   `json:"status"`
	TagList     []string `json:"tag_list"`
	RunUntagged bool     `json:"run_untagged"`
	Locked      bool     `json:"locked"`
	AccessLevel string   `json:"access_level"`
}

// jobJSON is GitLab's job entity.
type jobJSON struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	Status     string         `json:"status"`
	Stage      string         `json:"stage"`
	Ref        string         `json:"ref"`
	Tag        bool           `json:"tag"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  *time.Time     `json:"started_at"`
	FinishedAt *time.Time     `json:"finished_at"`
	Runner     map[string]any `json:"runner"`
	Pipeline   map[string]any `json:"pipeline"`
	WebURL     string         `json:"web_url"`
}

// AddRunner registers a runner with its authentication token and returns
// its id.
func (s *Server) AddRunner(description, token string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &runner{ID: s.id("runner"), Description: description, Token: token}
	s.runners[r.ID] = r
	return r.ID
}

// RunnerPaused reports whether runner id is paused.
func (s *Server) RunnerPaused(id int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runners[id]
	if r == nil {
		return false, fmt.Errorf("runner %d not found", id)
	}
	return r.Paused, nil
}

// StartJob makes runner id run a job named name and returns the job id. A
// paused runner takes no new jobs.
func (s *Server) StartJob(runnerID int64, name string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runners[runnerID]
	if r == nil {
		return 0, fmt.Errorf("starting job: runner %d not found", runnerID)
	}
	if r.Paused {
		return 0, fmt.Errorf("starting job: runner %d is paused", runnerID)
	}
	now := s.now().UTC()
	j := &job{ID: s.id("job"), Runner: runnerID, Name: name, Status: "running", Created: now, Started: &now}
	s.jobs[j.ID] = j
	return j.ID, nil
}

// FinishJob ends job id with status ("success", "failed", "canceled").
func (s *Server) FinishJob(id int64, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil {
		return fmt.Errorf("finishing job: job %d not found", id)
	}
	now := s.now().UTC()
	j.Status, j.Finished = status, &now
	return nil
}

func (s *Server) runner(c *call) *runner {
	if n, err := strconv.ParseInt(c.params["rid"], 10, 64); err == nil && s.runners[n] != nil {
		return s.runners[n]
	}
	c.error(http.StatusNotFound, "404 Runner Not Found")
	return nil
}

func runnerJSONOf(r *runner) runnerJSON {
	status := "online"
	if r.Paused {
		status = "paused"
	}
	return runnerJSON{
		ID: r.ID, Description: r.Description, Name: "gitlab-runner", Paused: r.Paused, Active: !r.Paused,
		RunnerType: "instance_type", IsShared: true, Online: true, Status: status, TagList: []string{},
		RunUntagged: true, AccessLevel: "not_protected",
	}
}

func (s *Server) getRunner(c *call) {
	if r := s.runner(c); r != nil {
		c.json(http.StatusOK, runnerJSONOf(r))
	}
}

func (s *Server) updateRunner(c *call) {
	r := s.runner(c)
	if r == nil {
		return
	}
	if v, ok := c.boolean("paused"); ok {
		r.Paused = v
	} else if v, ok := c.boolean("active"); ok {
		r.Paused = !v
	}
	if v, ok := c.str("description"); ok {
		r.Description = v
	}
	c.json(http.StatusOK, runnerJSONOf(r))
}

func (s *Server) listRunnerJobs(c *call) {
	r := s.runner(c)
	if r == nil {
		return
	}
	status := c.r.URL.Query().Get("status")
	out := []jobJSON{}
	for _, id := range sortedIDs(s.jobs) {
		j := s.jobs[id]
		if j.Runner != r.ID || status != "" && j.Status != status {
			continue
		}
		out = append(out, jobJSON{
			ID: j.ID, Name: j.Name, Status: j.Status, Stage: "build", Ref: "main", CreatedAt: j.Created,
			StartedAt: j.Started, FinishedAt: j.Finished,
			Runner:   map[string]any{"id": r.ID, "description": r.Description, "active": !r.Paused, "paused": r.Paused, "is_shared": true},
			Pipeline: map[string]any{"id": 0, "project_id": 0, "ref": "main", "sha": zeroSHA, "status": j.Status},
			WebURL:   s.baseURL(nil) + "/-/jobs/" + strconv.FormatInt(j.ID, 10),
		})
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) verifyRunner(c *call) {
	tok, _ := c.str("token")
	for _, id := range sortedIDs(s.runners) {
		if r := s.runners[id]; tok != "" && r.Token == tok {
			c.json(http.StatusOK, map[string]any{"id": r.ID, "token": r.Token, "token_expires_at": nil})
			return
		}
	}
	c.error(http.StatusForbidden, "403 Forbidden")
}
