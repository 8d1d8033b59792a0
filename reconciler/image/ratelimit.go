package image

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// rateLimited retries requests that a registry answers with 429 Too Many
// Requests (or 503 with a Retry-After), waiting as long as Retry-After asks
// (capped), or backing off exponentially from one second without it.
// go-containerregistry's own retry does not read Retry-After.
type rateLimited struct {
	next    http.RoundTripper
	retries int
	maxWait time.Duration
}

func (t *rateLimited) RoundTrip(req *http.Request) (*http.Response, error) {
	wait := time.Second
	for attempt := 0; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		if err != nil || attempt >= t.retries || !limited(resp) {
			return resp, err
		}
		if pl := pullLimit(resp.Header); pl != nil && resp.Header.Get("Retry-After") == "" {
			// The quota is used up for its window: retrying only spends time.
			resp.Body.Close()
			return nil, pl
		}
		if req.Body != nil && req.GetBody == nil {
			return resp, nil // the body is gone, cannot send it again
		}
		d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			d, wait = wait, wait*2
		}
		d = min(d, t.maxWait)
		resp.Body.Close()
		timer := time.NewTimer(d)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func limited(resp *http.Response) bool {
	return resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "")
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// PullLimitError reports a registry's pull quota used up: Docker Hub's
// ratelimit-remaining header at 0.
type PullLimitError struct {
	Limit  int           // pulls allowed per window; 0 when not said
	Window time.Duration // the window; 0 when not said
}

func (e *PullLimitError) Error() string {
	quota := ""
	if e.Limit > 0 {
		quota = fmt.Sprintf(": 0 of %d pulls left", e.Limit)
		if e.Window > 0 {
			quota += fmt.Sprintf(" per %s", e.Window)
		}
	}
	return "registry pull limit reached" + quota + "; try later, or log in (docker login) for a larger quota"
}

// pullLimit reads Docker Hub's ratelimit-limit and ratelimit-remaining
// headers ("100;w=21600") and returns an error when none is left.
func pullLimit(h http.Header) *PullLimitError {
	remaining, _, ok := quota(h.Get("Ratelimit-Remaining"))
	if !ok || remaining > 0 {
		return nil
	}
	limit, window, _ := quota(h.Get("Ratelimit-Limit"))
	return &PullLimitError{Limit: limit, Window: window}
}

// quota parses "N" or "N;w=SECONDS".
func quota(v string) (n int, window time.Duration, ok bool) {
	head, params, _ := strings.Cut(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(head))
	if err != nil {
		return 0, 0, false
	}
	for _, p := range strings.Split(params, ";") {
		if w, found := strings.CutPrefix(strings.TrimSpace(p), "w="); found {
			if s, err := strconv.Atoi(w); err == nil {
				window = time.Duration(s) * time.Second
			}
		}
	}
	return n, window, true
}
