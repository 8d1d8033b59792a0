package gitlabemu

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"time"
)

// Push commits files (path → content; an empty content deletes the file)
// to branch of projectPath as username would with git push, creating the
// branch from the default branch if needed, and fires the Push Hook. It
// returns the new commit's sha.
func (s *Server) Push(projectPath, branch, username, message string, files map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPath(projectPath)
	if p == nil {
		return "", fmt.Errorf("pushing: project %q not found", projectPath)
	}
	u := s.userByName(username)
	if u == nil {
		return "", fmt.Errorf("pushing: user %q not found", username)
	}
	old, exists := p.branches[branch]
	base := old
	if !exists {
		base = p.branches[p.DefaultBranch]
	}
	tree := maps.Clone(p.commits[base].Tree)
	for name, content := range files {
		if content == "" {
			delete(tree, name)
		} else {
			tree[name] = []byte(content)
		}
	}
	c := s.newCommit(p, []string{base}, tree, u, u, message)
	p.branches[branch] = c.ID
	s.firePush(p, u, branch, firstNonEmpty(old, zeroSHA), c.ID, []*commit{c})
	return c.ID, nil
}

// Merge merges merge request iid of projectPath as username would in the
// web UI and returns the merge commit's sha.
func (s *Server) Merge(projectPath string, iid int64, username string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, mr, u, err := s.lookupMR(projectPath, iid, username)
	if err != nil {
		return "", fmt.Errorf("merging: %w", err)
	}
	if mr.State != "opened" {
		return "", fmt.Errorf("merging: !%d is %s", iid, mr.State)
	}
	return s.merge(p, mr, u, "")
}

// CloseMR closes merge request iid of projectPath without merging, as
// username would.
func (s *Server) CloseMR(projectPath string, iid int64, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, mr, u, err := s.lookupMR(projectPath, iid, username)
	if err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	if mr.State != "opened" {
		return fmt.Errorf("closing: !%d is %s", iid, mr.State)
	}
	s.closeMR(p, mr, u)
	return nil
}

func (s *Server) lookupMR(projectPath string, iid int64, username string) (*project, *mergeRequest, *user, error) {
	p := s.projectByPath(projectPath)
	if p == nil {
		return nil, nil, nil, fmt.Errorf("project %q not found", projectPath)
	}
	u := s.userByName(username)
	if u == nil {
		return nil, nil, nil, fmt.Errorf("user %q not found", username)
	}
	for _, mr := range p.mrs {
		if mr.IID == iid {
			return p, mr, u, nil
		}
	}
	return nil, nil, nil, fmt.Errorf("merge request !%d of %s not found", iid, projectPath)
}

// MR is a snapshot of a merge request for tests and the demo.
type MR struct {
	IID          int64
	Title        string
	Description  string
	State        string
	SourceBranch string
	TargetBranch string
	Labels       []string
	Assignees    []string
	AutoMerge    bool
	SHA          string
	MergeCommit  string
	Notes        []string
}

// MergeRequests returns the merge requests of projectPath, oldest first.
func (s *Server) MergeRequests(projectPath string) []MR {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPath(projectPath)
	if p == nil {
		return nil
	}
	var out []MR
	for _, mr := range p.mrs {
		m := MR{
			IID: mr.IID, Title: mr.Title, Description: mr.Description, State: mr.State,
			SourceBranch: mr.SourceBranch, TargetBranch: mr.TargetBranch, Labels: append([]string(nil), mr.Labels...),
			AutoMerge: mr.AutoMerge, SHA: p.mrHead(mr), MergeCommit: mr.MergeCommitSHA,
		}
		for _, u := range mr.Assignees {
			m.Assignees = append(m.Assignees, u.Username)
		}
		for _, n := range mr.Notes {
			m.Notes = append(m.Notes, n.Body)
		}
		out = append(out, m)
	}
	return out
}

// File returns the content of file name at ref (a branch or a sha).
func (s *Server) File(projectPath, ref, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByPath(projectPath)
	if p == nil {
		return "", fmt.Errorf("reading %s: project %q not found", name, projectPath)
	}
	c := p.resolve(ref)
	if c == nil {
		return "", fmt.Errorf("reading %s: ref %q not found in %s", name, ref, projectPath)
	}
	b, ok := c.Tree[name]
	if !ok {
		return "", fmt.Errorf("reading %s: not found at %s", name, ref)
	}
	return string(b), nil
}

// Branch returns the head sha of branch, or "" when it does not exist.
func (s *Server) Branch(projectPath, branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.projectByPath(projectPath); p != nil {
		return p.branches[branch]
	}
	return ""
}

// Serve listens on addr (e.g. "127.0.0.1:0") and serves the API until the
// returned server is shut down; it sets the external URL to the listener's.
func (s *Server) Serve(addr string) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listening for the gitlab emulator: %w", err)
	}
	u := "http://" + ln.Addr().String()
	s.SetURL(u)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, u, nil
}
