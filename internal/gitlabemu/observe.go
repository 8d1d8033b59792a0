package gitlabemu

import (
	"net/http"
	"strings"
	"time"
)

// fault makes matching requests fail with a status, a number of times.
type fault struct {
	method string
	path   string
	status int
	times  int
	// retryAfter, for a 429, makes it GitLab's throttle answer.
	retryAfter time.Duration
}

// FailNext makes the next n requests with method whose path below /api/v4
// contains pathPart answer status (e.g. 500, 429) before any other check.
// An empty method matches every method.
func (s *Server) FailNext(method, pathPart string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, path: pathPart, status: status, times: n})
}

// ClearFaults drops the failures FailNext set up that have not fired yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) fault(method, path string) *fault {
	unescaped := strings.ReplaceAll(path, "%2F", "/")
	for _, f := range s.faults {
		if f.times > 0 && (f.method == "" || f.method == method) &&
			(strings.Contains(path, f.path) || strings.Contains(unescaped, f.path)) {
			f.times--
			return f
		}
	}
	return nil
}

// Requests returns the API calls answered so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Writes returns the API calls answered so far that were not GET or HEAD.
func (s *Server) Writes() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the recorded API calls.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}
