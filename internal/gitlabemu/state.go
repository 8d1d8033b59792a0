// Package gitlabemu is an in-process, stateful emulator of the GitLab REST
// API v4: projects, repository files, branches, commits, merge requests,
// notes, pipelines, runners, users and project hooks. It answers with the
// JSON shapes and status codes that GitLab documents, so that the real
// client library can drive it in tests and in `hydrafy demo`.
package gitlabemu

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value works.
type Options struct {
	// Logger receives unknown endpoints and hook deliveries; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HookTimeout bounds one webhook delivery (GitLab waits 10s).
	HookTimeout time.Duration
	// HookRetries is how many times a failed delivery is retried.
	HookRetries int
	// HookBackoff is the pause before the first retry; it doubles.
	HookBackoff time.Duration
}

// Server is the emulator. Its methods are safe for concurrent use.
type Server struct {
	log   *slog.Logger
	now   func() time.Time
	hooks hookConfig

	mu        sync.Mutex
	url       string
	users     map[int64]*user
	tokens    map[string]*token
	projects  map[int64]*project
	runners   map[int64]*runner
	jobs      map[int64]*job
	nextID    map[string]int64
	requests  []Request
	faults    []*fault
	pending   int
	delivered []Delivery
	closed    chan struct{}
}

type user struct {
	ID       int64
	Username string
	Name     string
	Email    string
}

type token struct {
	User   *user
	Scopes []string
}

type project struct {
	ID            int64
	Path          string // namespace/name
	DefaultBranch string
	Created       time.Time
	commits       map[string]*commit
	branches      map[string]string // name → head sha
	mrs           []*mergeRequest
	hooks         []*hook
	pipelines     []*pipeline
	nextIID       int64
	readOnly      map[string]bool // usernames that may only read
}

type commit struct {
	ID             string
	Parents        []string
	Tree           map[string][]byte
	AuthorName     string
	AuthorEmail    string
	CommitterName  string
	CommitterEmail string
	Message        string
	Time           time.Time
}

// New returns an empty emulator holding one administrator user, "root".
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HookTimeout == 0 {
		opts.HookTimeout = 10 * time.Second
	}
	if opts.HookRetries == 0 {
		opts.HookRetries = 3
	}
	if opts.HookBackoff == 0 {
		opts.HookBackoff = 200 * time.Millisecond
	}
	s := &Server{
		log:      opts.Logger,
		now:      opts.Now,
		hooks:    hookConfig{timeout: opts.HookTimeout, retries: opts.HookRetries, backoff: opts.HookBackoff},
		users:    map[int64]*user{},
		tokens:   map[string]*token{},
		projects: map[int64]*project{},
		runners:  map[int64]*runner{},
		jobs:     map[int64]*job{},
		nextID:   map[string]int64{},
		closed:   make(chan struct{}),
	}
	s.AddUser("root", "Administrator", "admin@example.com")
	return s
}

// SetURL sets the external base URL (scheme://host) used in web_url fields
// and hook payloads. Without it the first request's Host is used.
func (s *Server) SetURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.url = strings.TrimSuffix(u, "/")
}

// Close stops pending hook retries and waits for running deliveries.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	_ = s.WaitHooks(context.Background())
}

// AddUser adds a user and returns its id. Adding an existing username
// returns the existing id.
func (s *Server) AddUser(username, name, email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userByName(username); u != nil {
		return u.ID
	}
	u := &user{ID: s.id("user"), Username: username, Name: name, Email: email}
	s.users[u.ID] = u
	return u.ID
}

// AddToken makes token authenticate as username (created if missing) with
// the given scopes; no scopes means "api".
func (s *Server) AddToken(tok, username string, scopes ...string) {
	if len(scopes) == 0 {
		scopes = []string{"api"}
	}
	id := s.AddUser(username, username, username+"@example.com")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = &token{User: s.users[id], Scopes: scopes}
}

// AddProject creates project path ("group/name") whose default branch holds
// files in one initial commit, and returns the project id.
func (s *Server) AddProject(path, defaultBranch string, files map[string]string) (int64, error) {
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	if !strings.Contains(path, "/") {
		return 0, fmt.Errorf("adding project %q: path needs a namespace", path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.projectByPath(path) != nil {
		return 0, fmt.Errorf("adding project %q: already exists", path)
	}
	p := &project{
		ID: s.id("project"), Path: path, DefaultBranch: defaultBranch, Created: s.now().UTC(),
		commits: map[string]*commit{}, branches: map[string]string{},
	}
	tree := map[string][]byte{}
	for name, content := range files {
		tree[name] = []byte(content)
	}
	root := s.users[1]
	c := s.newCommit(p, nil, tree, root, root, "Initial commit")
	p.branches[defaultBranch] = c.ID
	s.projects[p.ID] = p
	return p.ID, nil
}

// id hands out the next id of a kind; callers hold s.mu.
func (s *Server) id(kind string) int64 {
	s.nextID[kind]++
	return s.nextID[kind]
}

func (s *Server) userByName(name string) *user {
	for _, u := range s.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func (s *Server) projectByPath(path string) *project {
	for _, p := range s.projects {
		if strings.EqualFold(p.Path, path) {
			return p
		}
	}
	return nil
}

// baseURL is the external URL; callers hold s.mu.
func (s *Server) baseURL(r *http.Request) string {
	if s.url == "" && r != nil {
		s.url = "http://" + r.Host
	}
	if s.url == "" {
		return "http://gitlab.example.com"
	}
	return s.url
}

func (s *Server) projectURL(p *project) string { return s.baseURL(nil) + "/" + p.Path }
