package gitlabemu

import (
	"net/http"
	"strconv"
	"time"
)

// rateLimitLimit is the RateLimit-Limit a throttled answer reports: GitLab's
// default for authenticated API requests per minute.
const rateLimitLimit = 2000

// RateLimitNext makes the next n requests with method whose path below
// /api/v4 contains pathPart answer as GitLab's throttle does: 429 with
// Retry-After (whole seconds, rounded up) and the RateLimit-* headers, and
// the plain-text body "Retry later". An empty method matches every method.
func (s *Server) RateLimitNext(method, pathPart string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, path: pathPart, status: http.StatusTooManyRequests, times: n, retryAfter: retryAfter})
}

// throttled writes GitLab's answer to a throttled request.
func (s *Server) throttled(c *call, retryAfter time.Duration) {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	reset := s.now().Add(time.Duration(secs) * time.Second)
	h := c.w.Header()
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", strconv.Itoa(rateLimitLimit))
	h.Set("RateLimit-Observed", strconv.Itoa(rateLimitLimit+1))
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "text/plain")
	c.status = http.StatusTooManyRequests
	c.w.WriteHeader(http.StatusTooManyRequests)
	_, _ = c.w.Write([]byte("Retry later\n"))
}
