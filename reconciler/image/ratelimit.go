package image

import (
	"net/http"
	"strconv"
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
