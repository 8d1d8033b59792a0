package gitlabemu

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

func init() {
	handle(http.MethodPost, "projects/:id/repository/commits", (*Server).createCommit)
	handle(http.MethodGet, "projects/:id/repository/commits", (*Server).listCommits)
	handle(http.MethodGet, "projects/:id/repository/commits/:sha", (*Server).getCommit)
}

// commitJSON is GitLab's commit entity.
type commitJSON struct {
	ID               string              `json:"id"`
	ShortID          string              `json:"short_id"`
	Title            string              `json:"title"`
	Message          string              `json:"message"`
	AuthorName       string              `json:"author_name"`
	AuthorEmail      string              `json:"author_email"`
	AuthoredDate     time.Time           `json:"authored_date"`
	CommitterName    string              `json:"committer_name"`
	CommitterEmail   string              `json:"committer_email"`
	CommittedDate    time.Time           `json:"committed_date"`
	CreatedAt        time.Time           `json:"created_at"`
	ParentIDs        []string            `json:"parent_ids"`
	Trailers         map[string]string   `json:"trailers"`
	ExtendedTrailers map[string][]string `json:"extended_trailers"`
	WebURL           string              `json:"web_url"`
}

// commitDetailJSON adds what GET of a single commit carries.
type commitDetailJSON struct {
	commitJSON
	Stats        map[string]int `json:"stats"`
	Status       *string        `json:"status"`
	ProjectID    int64          `json:"project_id"`
	LastPipeline *pipelineJSON  `json:"last_pipeline"`
}

func (s *Server) commitJSON(p *project, c *commit) commitJSON {
	title, _, _ := strings.Cut(c.Message, "\n")
	parents := append([]string{}, c.Parents...)
	return commitJSON{
		ID: c.ID, ShortID: c.ID[:8], Title: title, Message: c.Message,
		AuthorName: c.AuthorName, AuthorEmail: c.AuthorEmail, AuthoredDate: c.Time,
		CommitterName: c.CommitterName, CommitterEmail: c.CommitterEmail, CommittedDate: c.Time,
		CreatedAt: c.Time, ParentIDs: parents, Trailers: map[string]string{}, ExtendedTrailers: map[string][]string{},
		WebURL: s.projectURL(p) + "/-/commit/" + c.ID,
	}
}

// trailers parses "Key: value" lines of the message's last paragraph.
func trailers(msg string) (map[string]string, map[string][]string) {
	tr, ext := map[string]string{}, map[string][]string{}
	paras := strings.Split(strings.TrimSpace(msg), "\n\n")
	if len(paras) < 2 {
		return tr, ext
	}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return map[string]string{}, map[string][]string{}
		}
		tr[k] = v
		ext[k] = append(ext[k], v)
	}
	return tr, ext
}

func (s *Server) getCommit(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	cm := p.resolve(c.params["sha"])
	if cm == nil {
		c.error(http.StatusNotFound, "404 Commit Not Found")
		return
	}
	d := commitDetailJSON{commitJSON: s.commitJSON(p, cm), ProjectID: p.ID, Stats: diffStats(p, cm)}
	if pl := p.latestPipeline(cm.ID); pl != nil {
		j := s.pipelineJSON(p, pl)
		d.LastPipeline = &j
		d.Status = &j.Status
	}
	c.json(http.StatusOK, d)
}

func diffStats(p *project, c *commit) map[string]int {
	var parent map[string][]byte
	if len(c.Parents) > 0 {
		parent = p.commits[c.Parents[0]].Tree
	}
	add, del := 0, 0
	for name, content := range c.Tree {
		if old, ok := parent[name]; !ok || string(old) != string(content) {
			add += strings.Count(string(content), "\n")
			del += strings.Count(string(old), "\n")
		}
	}
	for name, old := range parent {
		if _, ok := c.Tree[name]; !ok {
			del += strings.Count(string(old), "\n")
		}
	}
	return map[string]int{"additions": add, "deletions": del, "total": add + del}
}

func (s *Server) listCommits(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	ref := c.r.URL.Query().Get("ref_name")
	if ref == "" {
		ref = p.DefaultBranch
	}
	head := p.resolve(ref)
	if head == nil {
		c.json(http.StatusOK, []commitJSON{})
		return
	}
	// Like GitLab, only the list parses trailers, and only when asked to.
	withTrailers := c.r.URL.Query().Get("trailers") == "true"
	out := []commitJSON{}
	for cm := head; cm != nil; {
		j := s.commitJSON(p, cm)
		if withTrailers {
			j.Trailers, j.ExtendedTrailers = trailers(cm.Message)
		}
		out = append(out, j)
		if len(cm.Parents) == 0 {
			break
		}
		cm = p.commits[cm.Parents[0]]
	}
	c.json(http.StatusOK, paginate(c, out))
}

func (s *Server) createCommit(c *call) {
	p := s.project(c)
	if p == nil {
		return
	}
	branch, _ := c.str("branch")
	msg, _ := c.str("commit_message")
	if branch == "" || msg == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "branch is missing, commit_message is missing"})
		return
	}
	actions, err := parseActions(c.body["actions"])
	if err != nil {
		c.json(http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	startBranch, _ := c.str("start_branch")
	startSHA, _ := c.str("start_sha")
	force, _ := c.boolean("force")
	authorName, _ := c.str("author_name")
	authorEmail, _ := c.str("author_email")
	author := c.user
	if authorEmail != "" {
		author = &user{Name: authorName, Email: authorEmail}
	}

	old, exists := p.branches[branch]
	var base string
	switch {
	case exists && (startBranch != "" || startSHA != "") && force:
		base = firstNonEmpty(p.branches[startBranch], startSHA)
	case exists && (startBranch != "" && startBranch != branch || startSHA != "" && startSHA != old):
		c.error(http.StatusBadRequest, fmt.Sprintf("A branch called '%s' already exists. Switch to that branch in order to make changes", branch))
		return
	case exists:
		base = old
	case startBranch != "":
		base = p.branches[startBranch]
	case startSHA != "":
		if cm := p.resolve(startSHA); cm != nil {
			base = cm.ID
		}
	default:
		c.error(http.StatusBadRequest, "You can only create or edit files when you are on a branch")
		return
	}
	parent := p.commits[base]
	if parent == nil {
		c.error(http.StatusBadRequest, "Invalid start branch or sha")
		return
	}
	if !validBranchName(branch) {
		c.error(http.StatusBadRequest, "Branch name is invalid")
		return
	}
	tree, err := p.apply(parent, actions)
	if err != nil {
		c.error(http.StatusBadRequest, err.Error())
		return
	}
	cm := s.newCommit(p, []string{parent.ID}, tree, author, c.user, msg)
	p.branches[branch] = cm.ID
	s.firePush(p, c.user, branch, firstNonEmpty(old, zeroSHA), cm.ID, []*commit{cm})
	d := commitDetailJSON{commitJSON: s.commitJSON(p, cm), ProjectID: p.ID, Stats: diffStats(p, cm)}
	c.json(http.StatusCreated, d)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
