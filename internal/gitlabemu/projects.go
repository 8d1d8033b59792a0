package gitlabemu

import (
	"fmt"
	"net/http"
	"path"
	"strconv"
	"time"
)

func init() {
	handle(http.MethodGet, "projects/:id", (*Server).getProject)
	handle(http.MethodGet, "users", (*Server).listUsers)
	handle(http.MethodGet, "user", (*Server).currentUser)
}

// projectJSON is GitLab's project entity, trimmed to what clients read.
type projectJSON struct {
	ID                int64          `json:"id"`
	Description       string         `json:"description"`
	Name              string         `json:"name"`
	NameWithNamespace string         `json:"name_with_namespace"`
	Path              string         `json:"path"`
	PathWithNamespace string         `json:"path_with_namespace"`
	CreatedAt         time.Time      `json:"created_at"`
	DefaultBranch     string         `json:"default_branch"`
	SSHURLToRepo      string         `json:"ssh_url_to_repo"`
	HTTPURLToRepo     string         `json:"http_url_to_repo"`
	WebURL            string         `json:"web_url"`
	Visibility        string         `json:"visibility"`
	Archived          bool           `json:"archived"`
	LastActivityAt    time.Time      `json:"last_activity_at"`
	Namespace         map[string]any `json:"namespace"`
}

func (s *Server) projectJSON(p *project) projectJSON {
	ns, name := path.Split(p.Path)
	ns = ns[:len(ns)-1]
	web := s.projectURL(p)
	return projectJSON{
		ID: p.ID, Name: name, NameWithNamespace: ns + " / " + name, Path: name,
		PathWithNamespace: p.Path, CreatedAt: p.Created, DefaultBranch: p.DefaultBranch,
		SSHURLToRepo:  "git@" + hostOf(web) + ":" + p.Path + ".git",
		HTTPURLToRepo: web + ".git", WebURL: web, Visibility: "private",
		LastActivityAt: p.Created,
		Namespace: map[string]any{
			"id": 1, "name": path.Base(ns), "path": path.Base(ns), "kind": "group", "full_path": ns,
		},
	}
}

func hostOf(u string) string {
	for _, pre := range []string{"http://", "https://"} {
		if len(u) > len(pre) && u[:len(pre)] == pre {
			u = u[len(pre):]
		}
	}
	for i := range len(u) {
		if u[i] == '/' {
			return u[:i]
		}
	}
	return u
}

// project resolves the :id parameter (a number or a path) or answers 404,
// and answers 403 to writes by a user with read-only access.
func (s *Server) project(c *call) *project {
	id := c.params["id"]
	var p *project
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		p = s.projects[n]
	} else {
		p = s.projectByPath(id)
	}
	if p == nil {
		c.error(http.StatusNotFound, "404 Project Not Found")
		return nil
	}
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead && p.readOnly[c.user.Username] {
		c.error(http.StatusForbidden, "403 Forbidden")
		return nil
	}
	return p
}

// ReadOnly gives username only read access (the Reporter role) to
// projectPath: its writes there answer 403.
func (s *Server) ReadOnly(projectPath, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPath(projectPath)
	if p == nil {
		return fmt.Errorf("restricting access: project %q not found", projectPath)
	}
	if p.readOnly == nil {
		p.readOnly = map[string]bool{}
	}
	p.readOnly[username] = true
	return nil
}

func (s *Server) getProject(c *call) {
	if p := s.project(c); p != nil {
		c.json(http.StatusOK, s.projectJSON(p))
	}
}

// userJSON is GitLab's basic user entity.
type userJSON struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Name      string `json:"name"`
	State     string `json:"state"`
	AvatarURL string `json:"avatar_url"`
	WebURL    string `json:"web_url"`
}

func (s *Server) userJSON(u *user) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Name: u.Name, State: "active", WebURL: s.baseURL(nil) + "/" + u.Username}
}

func (s *Server) listUsers(c *call) {
	name := c.r.URL.Query().Get("username")
	out := []userJSON{}
	for _, id := range sortedIDs(s.users) {
		u := s.users[id]
		if name == "" || u.Username == name {
			out = append(out, s.userJSON(u))
		}
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) currentUser(c *call) {
	c.json(http.StatusOK, s.userJSON(c.user))
}
