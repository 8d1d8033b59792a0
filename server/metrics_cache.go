package server

import (
	"bytes"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// metricsCacheFor is how long one rendering of /metrics answers every
// scrape that asks for the same format while no hydrafy metric changed: a
// flood of scrapes then costs one gather and one compression a second, and
// no buffer per request. (The Go and process metrics and the filesystem
// gauges may lag that long.)
const metricsCacheFor = time.Second

// maxRenderings bounds the renderings kept (one per Accept and
// Accept-Encoding pair; Prometheus always sends the same).
const maxRenderings = 4

// renderCache serves recent renderings of a handler's GET answers, as long
// as version still returns what it did at the rendering.
type renderCache struct {
	next    http.Handler
	ttl     time.Duration
	version func() uint64

	mu    sync.Mutex
	kept  map[string]*rendering
	group singleflight.Group
}

type rendering struct {
	at      time.Time
	version uint64
	status  int
	header  http.Header
	body    []byte
}

func newRenderCache(next http.Handler, ttl time.Duration, version func() uint64) *renderCache {
	return &renderCache{next: next, ttl: ttl, version: version, kept: map[string]*rendering{}}
}

func (c *renderCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.ttl <= 0 {
		c.next.ServeHTTP(w, r)
		return
	}
	key := r.Header.Get("Accept") + "\x00" + r.Header.Get("Accept-Encoding")
	c.mu.Lock()
	got := c.kept[key]
	c.mu.Unlock()
	if got == nil || time.Since(got.at) >= c.ttl || got.version != c.version() {
		// Concurrent scrapes of an expired rendering share one.
		v, _, _ := c.group.Do(key, func() (any, error) {
			rec := &recorder{header: http.Header{}, status: http.StatusOK}
			version := c.version()
			c.next.ServeHTTP(rec, r)
			out := &rendering{at: time.Now(), version: version, status: rec.status, header: rec.header, body: rec.body.Bytes()}
			if out.status == http.StatusOK {
				c.keep(key, out)
			}
			return out, nil
		})
		got = v.(*rendering)
	}
	for k, vs := range got.header {
		w.Header()[k] = append([]string(nil), vs...)
	}
	w.WriteHeader(got.status)
	_, _ = w.Write(got.body)
}

func (c *renderCache) keep(key string, out *rendering) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.kept[key]; !ok && len(c.kept) >= maxRenderings {
		oldest := ""
		for k, v := range c.kept {
			if oldest == "" || v.at.Before(c.kept[oldest].at) {
				oldest = k
			}
		}
		delete(c.kept, oldest)
	}
	c.kept[key] = out
}

// recorder is the http.ResponseWriter a rendering is written to.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// changed marks that a hydrafy metric changed: a kept rendering of
// /metrics is stale.
func (m *Metrics) changed() { m.version.Add(1) }

// Version counts the changes to hydrafy's own metrics.
func (m *Metrics) Version() uint64 { return m.version.Load() }
