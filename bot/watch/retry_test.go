package watch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

func TestCheckRetriesThenSucceeds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter string
	}{
		{"429 retry-after 0", http.StatusTooManyRequests, "0"},
		{"429 retry-after 1", http.StatusTooManyRequests, "1"},
		{"429 retry-after date", http.StatusTooManyRequests, t0.Add(-time.Minute).Format(http.TimeFormat)},
		{"503 backoff", http.StatusServiceUnavailable, ""},
		{"502 backoff", http.StatusBadGateway, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRegistry(t)
			d := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
			w := tr.watcher(t, func(o *Options) { o.Now = func() time.Time { return t0 } })
			var answered nixtest.Counter
			tr.Intercept(nixtest.Failing("manifests", 2, tc.code, tc.retryAfter, &answered))
			tr.Requests()
			res, _ := check(t, w, State{}, t0)
			if res.Digest != d {
				t.Errorf("digest %s, want %s", res.Digest, d)
			}
			if answered.Load() != 2 {
				t.Errorf("registry refused %d requests, want 2", answered.Load())
			}
			// Two refused HEADs, the HEAD that worked, then the GETs of a new digest.
			if got := tr.Requests(); got["HEAD manifests"] != 3 || got["GET manifests"] != 2 {
				t.Errorf("requests: %v", got)
			}
		})
	}
}

func TestCheckPersistentFailure(t *testing.T) {
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter string
		requests   int
		want       string
	}{
		{"503", http.StatusServiceUnavailable, "", 3,
			"resolving %s:latest: registry answered 503 Service Unavailable after 3 attempts"},
		{"429", http.StatusTooManyRequests, "0", 3,
			"resolving %s:latest: registry answered 429 Too Many Requests after 3 attempts"},
		{"429 asking for an hour", http.StatusTooManyRequests, "3600", 1,
			"resolving %s:latest: registry answered 429 Too Many Requests after 1 attempt (it asked to wait 1h0m0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRegistry(t)
			tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
			w := tr.watcher(t, func(o *Options) { o.Retry.Attempts = 3 })
			var answered nixtest.Counter
			tr.Intercept(nixtest.Failing("manifests", -1, tc.code, tc.retryAfter, &answered))
			prev := State{Version: StateVersion}
			_, st, err := w.Check(t.Context(), prev, t0)
			if err == nil {
				t.Fatal("Check succeeded against a failing registry")
			}
			if want := fmt.Sprintf(tc.want, tr.Repo()); err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
			if answered.Load() != tc.requests {
				t.Errorf("made %d requests, want %d", answered.Load(), tc.requests)
			}
			if diff := cmp.Diff(prev, st); diff != "" {
				t.Errorf("state changed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckCancelDuringBackoff: a cancelled context ends the wait for the
// next attempt at once.
func TestCheckCancelDuringBackoff(t *testing.T) {
	tr := newTestRegistry(t)
	tr.pushIndex(t, "latest", "linux/amd64")
	w := tr.watcher(t, func(o *Options) { o.Retry = Retry{Attempts: 5, Base: time.Hour, Max: 2 * time.Hour} })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tr.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if nixtest.RequestKind(r.URL.Path) != "manifests" {
			return false
		}
		cancel()
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := w.Check(ctx, State{}, t0)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Check kept waiting after its context was cancelled")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		got, ok := retryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
