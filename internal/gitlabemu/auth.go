package gitlabemu

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
)

// authenticate resolves the request's token (PRIVATE-TOKEN or
// Authorization: Bearer) and checks its scope; it answers 401 or 403 itself
// and reports whether the call may go on. POST /runners/verify authenticates
// with the runner token in its body instead.
func (s *Server) authenticate(c *call, path string) bool {
	if path == "runners/verify" {
		return true
	}
	tok := c.r.Header.Get("PRIVATE-TOKEN")
	if tok == "" {
		if v, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer "); ok {
			tok = v
		}
	}
	t := s.lookupToken(tok)
	if t == nil {
		c.error(http.StatusUnauthorized, "401 Unauthorized")
		return false
	}
	if !scopeAllows(t.Scopes, c.r.Method, path) {
		c.status = http.StatusForbidden
		c.json(http.StatusForbidden, map[string]string{
			"error":             "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.",
			"scope":             "api",
		})
		return false
	}
	c.user = t.User
	return true
}

func (s *Server) lookupToken(tok string) *token {
	if tok == "" {
		return nil
	}
	for k, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			return t
		}
	}
	return nil
}

// scopeAllows applies GitLab's token scopes: api allows every call,
// read_api every read, and manage_runner (GitLab 17.1+) reads and updates
// of runners by id, such as pausing one.
func scopeAllows(scopes []string, method, path string) bool {
	write := method != http.MethodGet && method != http.MethodHead
	switch {
	case slices.Contains(scopes, "api"):
		return true
	case !write && slices.Contains(scopes, "read_api"):
		return true
	case slices.Contains(scopes, "manage_runner") && strings.HasPrefix(path, "runners/"):
		return true
	}
	return false
}
