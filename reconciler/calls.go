package reconciler

import (
	"context"
	"net/http"
	"sync/atomic"
)

// CountingTransport counts the HTTP requests sent through it (each retry
// is one): to Observe, with the answer's status (0 when none came), and to
// the pass whose context the request carries, for its report.
type CountingTransport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Observe, if set, is called once per request.
	Observe func(status int)
}

// RoundTrip sends req through Base and counts it.
func (t CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if n, ok := req.Context().Value(callsKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	if t.Observe != nil {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		t.Observe(status)
	}
	return resp, err
}

type callsKey struct{}

// withCallCounter returns ctx carrying a counter of the requests a
// CountingTransport sends on its behalf.
func withCallCounter(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, callsKey{}, n), n
}
