package watch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry bounds how the watcher retries a registry that answers 429 or 5xx.
type Retry struct {
	// Attempts is the number of requests made before giving up (at least 1).
	Attempts int
	// Base is the first backoff delay when the registry sends no
	// Retry-After; each further attempt doubles it, up to Max.
	Base time.Duration
	// Max caps the backoff delay and the wait a Retry-After may ask for:
	// a registry asking for longer is reported at once instead.
	Max time.Duration
}

// DefaultRetry is what Options gets when it sets no Retry.
var DefaultRetry = Retry{Attempts: 4, Base: time.Second, Max: 2 * time.Minute}

// StatusError is a registry answer that stayed 429 or 5xx after every
// attempt the watcher was allowed.
type StatusError struct {
	// Status is the last HTTP status line, such as "429 Too Many Requests".
	Status string
	// Code is the last HTTP status code.
	Code int
	// Attempts is how many requests were made.
	Attempts int
	// RetryAfter is the wait the registry asked for last, when it asked for
	// more than Retry.Max.
	RetryAfter time.Duration
}

// Error reads "registry answered 429 Too Many Requests after 4 attempts".
func (e *StatusError) Error() string {
	s := fmt.Sprintf("registry answered %s after %d attempt", e.Status, e.Attempts)
	if e.Attempts != 1 {
		s += "s"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (it asked to wait %s)", e.RetryAfter)
	}
	return s
}

// retryTransport repeats idempotent requests that the registry answers with
// 429 or a 5xx, waiting as Retry-After says or with exponential backoff.
// go-containerregistry's own retry cannot see Retry-After, so it is turned
// off and this one sits below the auth transport instead.
type retryTransport struct {
	inner http.RoundTripper
	retry Retry
	now   func() time.Time
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return t.inner.RoundTrip(req)
	}
	delay := t.retry.Base
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp, err := t.inner.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if !retryable(resp.StatusCode) {
			return resp, nil
		}
		wait, asked := retryAfter(resp.Header.Get("Retry-After"), t.now())
		resp.Body.Close()
		if !asked {
			wait = delay
			delay = min(2*delay, t.retry.Max)
		}
		if attempt >= t.retry.Attempts || wait > t.retry.Max {
			e := &StatusError{Status: resp.Status, Code: resp.StatusCode, Attempts: attempt}
			if wait > t.retry.Max {
				e.RetryAfter = wait
			}
			return nil, e
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// retryable says which answers are worth asking again: rate limiting and
// server trouble. 501 means the method is not implemented, which no wait
// changes.
func retryable(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code != http.StatusNotImplemented)
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var _ http.RoundTripper = (*retryTransport)(nil)

// statusError finds a StatusError in err's chain.
func statusError(err error) (*StatusError, bool) {
	var se *StatusError
	ok := errors.As(err, &se)
	return se, ok
}
