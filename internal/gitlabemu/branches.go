package gitlabemu

import (
	"net/http"
	"net/url"
)

func init() {
	handle(http.MethodGet, "projects/:id/repository/branches", (*Server).listBranches)
	handle(http.MethodGet, "projects/:id/repository/branches/:branch", (*Server).getBranch)
	handle(http.MethodPost, "projects/:id/repository/branches", (*Server).createBranch)
	handle(http.MethodDelete, "projects/:id/repository/branches/:branch", (*Server).deleteBranch)
}

const zeroSHA = "0000000000000000000000000000000000000000"

// branchJSON is GitLab's branch entity.
type branchJSON struct {
	Name               string     `json:"name"`
	Merged             bool       `json:"merged"`
	Protected          bool       `json:"protected"`
	Default            bool       `json:"default"`
	DevelopersCanPush  bool       `json:"developers_can_push"`
	DevelopersCanMerge bool       `json:"developers_can_merge"`
	CanPush            bool       `json:"can_push"`
	WebURL             string     `json:"web_url"`
	Commit             commitJSON `json:"commit"`
}

func (s *Server) branchJSON(p *project, name string) branchJSON {
	head := p.commits[p.branches[name]]
	merged := false
	if name != p.DefaultBranch {
		merged = p.isAncestor(head.ID, p.branches[p.DefaultBranch])
	}
	return branchJSON{
		Name: name, Merged: merged, Protected: name == p.DefaultBranch, Default: name == p.DefaultBranch,
		CanPush: true, WebURL: s.projectURL(p) + "/-/tree/" + url.PathEscape(name),
		Commit: s.commitJSON(p, head),
	}
}

func (s *Server) listBranches(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	out := []branchJSON{}
	for _, name := range sortedKeys(p.branches) {
		out = append(out, s.branchJSON(p, name))
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) getBranch(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	name := c.params["branch"]
	if _, ok := p.branches[name]; !ok {
		c.error(http.StatusNotFound, "404 Branch Not Found")
		return
	}
	c.json(http.StatusOK, s.branchJSON(p, name))
}

func (s *Server) createBranch(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	name, _ := c.str("branch")
	ref, _ := c.str("ref")
	if name == "" || ref == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "branch is missing, ref is missing"})
		return
	}
	if !validBranchName(name) {
		c.error(http.StatusBadRequest, "Branch name is invalid")
		return
	}
	if _, ok := p.branches[name]; ok {
		// GitLab answers 400, not 409, with the branch service's message.
		c.error(http.StatusBadRequest, "Branch already exists")
		return
	}
	from := p.resolve(ref)
	if from == nil {
		c.error(http.StatusBadRequest, "Invalid reference name: "+ref)
		return
	}
	p.branches[name] = from.ID
	s.firePush(p, c.user, name, zeroSHA, from.ID, nil)
	c.json(http.StatusCreated, s.branchJSON(p, name))
}

func (s *Server) deleteBranch(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	name := c.params["branch"]
	head, ok := p.branches[name]
	if !ok {
		c.error(http.StatusNotFound, "404 Branch Not Found")
		return
	}
	if name == p.DefaultBranch {
		c.error(http.StatusBadRequest, "Cannot remove HEAD branch")
		return
	}
	delete(p.branches, name)
	s.firePush(p, c.user, name, head, zeroSHA, nil)
	c.noContent()
}

// validBranchName applies the core of git's check-ref-format rules.
func validBranchName(name string) bool {
	if name == "" || name[0] == '-' || name[0] == '/' || name[len(name)-1] == '/' || name[len(name)-1] == '.' {
		return false
	}
	prev := rune(0)
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f, r == ' ', r == '~', r == '^', r == ':', r == '?', r == '*', r == '[', r == '\\':
			return false
		case r == '.' && prev == '.', r == '/' && prev == '/', r == '{' && prev == '@':
			return false
		}
		prev = r
	}
	return len(name) < 5 || name[len(name)-5:] != ".lock"
}

// isAncestor reports whether commit a is reachable from commit b.
func (p *project) isAncestor(a, b string) bool {
	_, ok := p.ancestors(b)[a]
	return ok
}

// ancestors is the set of commits reachable from sha, itself included.
func (p *project) ancestors(sha string) map[string]int {
	seen := map[string]int{}
	queue := []string{sha}
	for depth := 0; len(queue) > 0; depth++ {
		var next []string
		for _, id := range queue {
			if _, ok := seen[id]; ok {
				continue
			}
			seen[id] = depth
			if c := p.commits[id]; c != nil {
				next = append(next, c.Parents...)
			}
		}
		queue = next
	}
	return seen
}
