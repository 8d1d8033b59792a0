package gitlabemu

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func init() {
	handle(http.MethodGet, "projects/:id/hooks", (*Server).listHooks)
	handle(http.MethodPost, "projects/:id/hooks", (*Server).addHook)
	handle(http.MethodGet, "projects/:id/hooks/:hook", (*Server).getHook)
	handle(http.MethodPut, "projects/:id/hooks/:hook", (*Server).editHook)
	handle(http.MethodDelete, "projects/:id/hooks/:hook", (*Server).deleteHook)
}

type hook struct {
	ID            int64
	URL           string
	Token         string
	PushEvents    bool
	MergeRequests bool
	Created       time.Time
	failures      int       // deliveries failed in a row
	disabledUntil time.Time // while in the future, nothing is sent
}

// GitLab disables a hook for a while after 4 failed deliveries in a row
// (1 minute, doubling up to a day) and for good after 40.
const (
	hookFailuresToPause   = 4
	hookFailuresToDisable = 40
)

// active reports whether h receives events at now.
func (h *hook) active(now time.Time) bool {
	return h.failures < hookFailuresToDisable && !now.Before(h.disabledUntil)
}

// record notes a delivery's outcome.
func (h *hook) record(ok bool, now time.Time) {
	if ok {
		h.failures, h.disabledUntil = 0, time.Time{}
		return
	}
	h.failures++
	if h.failures >= hookFailuresToPause {
		pause := time.Minute << min(h.failures-hookFailuresToPause, 10)
		h.disabledUntil = now.Add(min(pause, 24*time.Hour))
	}
}

func (h *hook) alertStatus(now time.Time) (string, *string) {
	switch {
	case h.failures >= hookFailuresToDisable:
		return "disabled", nil
	case now.Before(h.disabledUntil):
		until := h.disabledUntil.Format(time.RFC3339)
		return "temporarily_disabled", &until
	}
	return "executable", nil
}

// hookJSON is GitLab's project hook entity; the token is never returned.
type hookJSON struct {
	ID                       int64     `json:"id"`
	URL                      string    `json:"url"`
	Name                     string    `json:"name"`
	Description              string    `json:"description"`
	ProjectID                int64     `json:"project_id"`
	PushEvents               bool      `json:"push_events"`
	PushEventsBranchFilter   string    `json:"push_events_branch_filter"`
	IssuesEvents             bool      `json:"issues_events"`
	ConfidentialIssuesEvents bool      `json:"confidential_issues_events"`
	MergeRequestsEvents      bool      `json:"merge_requests_events"`
	TagPushEvents            bool      `json:"tag_push_events"`
	NoteEvents               bool      `json:"note_events"`
	JobEvents                bool      `json:"job_events"`
	PipelineEvents           bool      `json:"pipeline_events"`
	WikiPageEvents           bool      `json:"wiki_page_events"`
	EnableSSLVerification    bool      `json:"enable_ssl_verification"`
	AlertStatus              string    `json:"alert_status"`
	DisabledUntil            *string   `json:"disabled_until"`
	CreatedAt                time.Time `json:"created_at"`
}

func (s *Server) hookJSON(p *project, h *hook) hookJSON {
	status, until := h.alertStatus(s.now())
	return hookJSON{
		ID: h.ID, URL: h.URL, ProjectID: p.ID, PushEvents: h.PushEvents, MergeRequestsEvents: h.MergeRequests,
		EnableSSLVerification: true, AlertStatus: status, DisabledUntil: until, CreatedAt: h.Created,
	}
}

// AddHook adds a project hook to projectPath that receives push and merge
// request events, signed with token, and returns its id.
func (s *Server) AddHook(projectPath, url, token string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPath(projectPath)
	if p == nil {
		return 0, fmt.Errorf("adding hook: project %q not found", projectPath)
	}
	h := &hook{ID: s.id("hook"), URL: url, Token: token, PushEvents: true, MergeRequests: true, Created: s.now().UTC()}
	p.hooks = append(p.hooks, h)
	return h.ID, nil
}

func (s *Server) listHooks(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	out := []hookJSON{}
	for _, h := range p.hooks {
		out = append(out, s.hookJSON(p, h))
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) hook(c *call) (*project, int, *hook) {
	p := s.project(c)
	if p == nil {
		return nil, 0, nil
	}
	for i, h := range p.hooks {
		if strconv.FormatInt(h.ID, 10) == c.params["hook"] {
			return p, i, h
		}
	}
	c.error(http.StatusNotFound, "404 Not found")
	return nil, 0, nil
}

func (s *Server) getHook(c *call) {
	if p, _, h := s.hook(c); h != nil {
		c.json(http.StatusOK, s.hookJSON(p, h))
	}
}

func (s *Server) addHook(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	h := &hook{ID: s.id("hook"), PushEvents: true, Created: s.now().UTC()}
	if !s.setHookFields(c, h) {
		return
	}
	p.hooks = append(p.hooks, h)
	c.json(http.StatusCreated, s.hookJSON(p, h))
}

func (s *Server) editHook(c *call) {
	p, _, h := s.hook(c)
	if h == nil {
		return
	}
	if s.setHookFields(c, h) {
		c.json(http.StatusOK, s.hookJSON(p, h))
	}
}

func (s *Server) setHookFields(c *call, h *hook) bool {
	if v, ok := c.str("url"); ok {
		h.URL = v
	}
	if h.URL == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "url is missing"})
		return false
	}
	if v, ok := c.str("token"); ok {
		h.Token = v
	}
	if v, ok := c.boolean("push_events"); ok {
		h.PushEvents = v
	}
	if v, ok := c.boolean("merge_requests_events"); ok {
		h.MergeRequests = v
	}
	return true
}

func (s *Server) deleteHook(c *call) {
	p, i, h := s.hook(c)
	if h == nil {
		return
	}
	p.hooks = append(p.hooks[:i], p.hooks[i+1:]...)
	c.noContent()
}
