package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// getWith sends GET url with the given Authorization header ("" for none)
// and returns the status and the Retry-After header.
func getWith(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	resp, _ := nixtest.Do(t, http.MethodGet, url, auth)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestHeaderBound: a header block over maxHeaderBytes is refused with 431
// before any handler runs.
func TestHeaderBound(t *testing.T) {
	r := newRig(t, stager(nil))
	url, _ := serve(t, r.server(t))
	d := hook("Merge Request Hook", mrPayload("group/app", "merge", "main"), "X-Padding", strings.Repeat("p", 2*maxHeaderBytes))
	code, _ := d.send(t, url)
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", code)
	}
	if n := r.rec.n.Load(); n != 1 {
		t.Errorf("%d triggers, want 1 (the start-up pass)", n)
	}
}

// TestConnectionBound: past MaxConnections open connections a new one is
// not served until one of them closes.
func TestConnectionBound(t *testing.T) {
	const limit = 4
	r := newRig(t, stager(nil))
	r.opts.MaxConnections = limit
	url, _ := serve(t, r.server(t))
	addr := strings.TrimPrefix(url, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Open connections that each got an answer, so the server holds them.
	held := make([]net.Conn, limit)
	for i := range held {
		held[i] = dial()
		if code := rawGet(t, held[i], "/healthz", 10*time.Second); code != 200 {
			t.Fatalf("connection %d: status %d", i, code)
		}
	}
	extra := dial()
	if code := rawGet(t, extra, "/healthz", 300*time.Millisecond); code != 0 {
		t.Fatalf("connection over the bound answered %d", code)
	}
	held[0].Close()
	// The request already sent on extra is answered once a slot frees.
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("connection over the bound not served after one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// rawGet sends GET path on c and reads the answer's status; 0 when none
// came within wait.
func rawGet(t *testing.T, c net.Conn, path string, wait time.Duration) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// blocking is a collector whose Collect waits for release.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b blocking) Describe(chan<- *prometheus.Desc) {}
func (b blocking) Collect(chan<- prometheus.Metric) {
	select {
	case b.entered <- struct{}{}:
	case <-b.release:
	}
	<-b.release
}

// TestScrapeInFlightBound: with scrapeInFlight scrapes under way, another
// /metrics (and /status) request is answered 503 with Retry-After at once.
func TestScrapeInFlightBound(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.MetricsCache = -1 // each scrape gathers: they block in Collect
	b := blocking{entered: make(chan struct{}), release: make(chan struct{})}
	r.metrics.Registry().MustRegister(b)
	statusEntered, statusRelease := make(chan struct{}), make(chan struct{})
	// Scrapes read the status too (the store's free bytes): only the
	// /status round blocks in it.
	var blockStatus atomic.Bool
	r.rec.statusHook = func() {
		if !blockStatus.Load() {
			return
		}
		select {
		case statusEntered <- struct{}{}:
		case <-statusRelease:
		}
		<-statusRelease
	}
	url, _ := serve(t, r.server(t))

	for _, ep := range []struct {
		path             string
		entered, release chan struct{}
	}{{"/metrics", b.entered, b.release}, {"/status", statusEntered, statusRelease}} {
		blockStatus.Store(ep.path == "/status")
		var wg sync.WaitGroup
		codes := make([]int, scrapeInFlight)
		for i := range scrapeInFlight {
			wg.Go(func() { codes[i], _ = getWith(t, url+ep.path, "") })
			<-ep.entered
		}
		code, retry := getWith(t, url+ep.path, "")
		if code != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("%s over the bound: %d, Retry-After %q; want 503 with Retry-After", ep.path, code, retry)
		}
		close(ep.release)
		wg.Wait()
		for i, c := range codes {
			if c != 200 {
				t.Errorf("%s scrape %d: %d", ep.path, i, c)
			}
		}
	}
	m := get(t, url+"/metrics", 200)
	for _, want := range []string{`hydrafy_http_requests_refused_total{path="/metrics"} 1`, `hydrafy_http_requests_refused_total{path="/status"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestMetricsToken: with a token, /metrics and /status need it as a
// bearer token; the health checks stay open.
func TestMetricsToken(t *testing.T) {
	const token = "metrics-bearer-token"
	r := newRig(t, stager(nil))
	r.opts.MetricsToken = configSecret(token)
	url, _ := serve(t, r.server(t))
	for _, path := range []string{"/metrics", "/status"} {
		for _, tc := range []struct {
			auth string
			want int
		}{
			{"", 401}, {"Bearer nope", 401}, {"Bearer " + token[:5], 401}, {"Bearer " + testSecret, 401},
			{"Basic " + token, 401}, {"Bearer " + token, 200},
		} {
			if code, _ := getWith(t, url+path, tc.auth); code != tc.want {
				t.Errorf("GET %s with %q: %d, want %d", path, tc.auth, code, tc.want)
			}
		}
	}
	if code, _ := getWith(t, url+"/healthz", ""); code != 200 {
		t.Errorf("/healthz without token: %d", code)
	}
}

// TestMetricsListener: with a listener of their own, /metrics and /status
// are served there and not on the main one, which keeps the webhooks.
func TestMetricsListener(t *testing.T) {
	r := newRig(t, stager(nil))
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.opts.MetricsListener = mln
	url, _ := serve(t, r.server(t))
	murl := "http://" + mln.Addr().String()
	for _, tc := range []struct {
		url  string
		want int
	}{
		{url + "/metrics", 404}, {url + "/status", 404}, {url + "/healthz", 200},
		{murl + "/metrics", 200}, {murl + "/status", 200}, {murl + "/healthz", 200}, {murl + "/readyz", 200},
	} {
		if code, _ := getWith(t, tc.url, ""); code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, code, tc.want)
		}
	}
	if code, _ := hook("Merge Request Hook", mrPayload("group/app", "merge", "main")).send(t, murl); code != 404 {
		t.Errorf("webhook on the metrics listener: %d, want 404", code)
	}
	if code, _ := hook("Merge Request Hook", mrPayload("group/app", "merge", "main")).send(t, url); code != 202 {
		t.Errorf("webhook on the main listener: %d, want 202", code)
	}
}

// TestHistogramBucketsPrintClean: every bucket bound prints as written,
// with no float noise such as 0.30000000000000004.
func TestHistogramBucketsPrintClean(t *testing.T) {
	r := newRig(t, stager(nil))
	s := r.server(t)
	url, _ := serve(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.rec.Trigger(resyncReason).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	m := get(t, url+"/metrics", 200)
	les := regexp.MustCompile(`le="([^"]+)"`).FindAllStringSubmatch(m, -1)
	if len(les) == 0 {
		t.Fatal("no histogram buckets in /metrics")
	}
	noisy := regexp.MustCompile(`\d{9,}|e-`)
	for _, le := range les {
		if noisy.MatchString(le[1]) {
			t.Errorf("bucket bound %s", le[0])
		}
	}
}

// TestMetricsRenderingShared: scrapes within the cache time share one
// gathering; after it, a scrape sees new values.
func TestMetricsRenderingShared(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.MetricsCache = time.Hour
	var gathers atomic.Int32
	r.metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_gathers", Help: "Gathers."},
		func() float64 { return float64(gathers.Add(1)) }))
	url, _ := serve(t, r.server(t))
	// The start-up pass changes the metrics: let it finish first.
	nixtest.WaitFor(t, "the start-up pass", func() bool { return r.rec.Status().Last != nil })
	for range 3 {
		var wg sync.WaitGroup
		for range scrapeInFlight {
			wg.Go(func() {
				if m := get(t, url+"/metrics", 200); !strings.Contains(m, "test_gathers 1\n") {
					t.Errorf("scrape saw another gathering:\n%s", m)
				}
			})
		}
		wg.Wait()
	}
	if n := gathers.Load(); n != 1 {
		t.Errorf("%d gatherings for %d scrapes, want 1", n, 3*scrapeInFlight)
	}

	r2 := newRig(t, stager(nil))
	r2.opts.MetricsCache = -1
	var fresh atomic.Int32
	r2.metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_gathers", Help: "Gathers."},
		func() float64 { return float64(fresh.Add(1)) }))
	url2, _ := serve(t, r2.server(t))
	get(t, url2+"/metrics", 200)
	if m := get(t, url2+"/metrics", 200); !strings.Contains(m, "test_gathers 2\n") {
		t.Errorf("uncached scrape did not gather again:\n%s", m)
	}
}

// TestSlowClientsCut: a client that stops in its headers, or in its body,
// is cut at the timeout, and its delivery does nothing.
func TestSlowClientsCut(t *testing.T) {
	for _, tc := range []struct {
		name, sent string
	}{
		{"headers", "POST /webhooks/gitlab HTTP/1.1\r\nHost: x\r\nX-Gitlab-Token: " + testSecret + "\r\n"},
		{"body", "POST /webhooks/gitlab HTTP/1.1\r\nHost: x\r\nX-Gitlab-Token: " + testSecret +
			"\r\nX-Gitlab-Event: Push Hook\r\nContent-Length: 1000\r\n\r\n{\"ref\":"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, stager(nil))
			s := r.server(t)
			s.headerTimeout, s.bodyTimeout = 200*time.Millisecond, 300*time.Millisecond
			url, _ := serve(t, s)
			c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.sent); err != nil {
				t.Fatal(err)
			}
			// Well past the cut, far short of the production timeouts.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after the timeout (read %q)", got)
			}
			if strings.Contains(string(got), " 202 ") {
				t.Errorf("a cut delivery was accepted: %q", got)
			}
			if n := r.rec.n.Load(); n != 1 {
				t.Errorf("%d triggers, want 1 (the start-up pass)", n)
			}
		})
	}
}

// TestMetricsRenderingFollowsChanges: a change to hydrafy's metrics shows
// in the next scrape, cache or not.
func TestMetricsRenderingFollowsChanges(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.MetricsCache = time.Hour
	url, _ := serve(t, r.server(t))
	before := get(t, url+"/metrics", 200)
	if strings.Contains(before, `hydrafy_webhooks_total{event="push",result="ignored"} 1`) {
		t.Fatal("a webhook counted before any was sent")
	}
	hook("Push Hook", pushPayload("group/other", "refs/heads/main")).send(t, url)
	if m := get(t, url+"/metrics", 200); !strings.Contains(m, `hydrafy_webhooks_total{event="push",result="ignored"} 1`) {
		t.Errorf("the scrape after a webhook does not count it:\n%s", m)
	}
}
