package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

const (
	loadSecret  = "load-webhook-secret"
	loadMetrics = "load-metrics-token"
	// loadBudget bounds the whole benchmark: every phase is bounded in
	// count, and this in time.
	loadBudget = 5 * time.Minute
)

// BenchmarkLoad runs `hydrafy serve` as its own process against the GitLab
// emulator on loopback, with the default pace (5 s), and drives it with an
// open-loop load generator: webhooks accepted and ignored at 500 and
// 2,000 requests/s (p50/p99, passes started, GitLab requests made), a flood
// of 100,000 accepted deliveries with unique 4 KiB Idempotency-Keys, and a
// flood of /metrics scrapes at 500 requests/s for 20 s with webhooks
// alongside. It prints the daemon's RSS before and after each flood and
// its ratio to the baseline. Targets: accepted p99 < 5 ms at 500 req/s, RSS
// back within 20 MB of the baseline. Run it with -benchtime=1x.
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		benchLoad(b)
	}
}

func benchLoad(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), loadBudget)
	defer cancel()
	gl := nixtest.NewGitLab(b, gitlabemu.Options{})
	emu := gl.Emu
	gl.Project(b, "group/app", map[string]string{".gitlab-ci.yml": "build:\n  image: nixos/nix:latest\n"})

	dir := b.TempDir()
	addr := freeLoopbackAddr(b)
	runnerConfig := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(runnerConfig, []byte("concurrent = 1\n\n[[runners]]\n  name = \"nix\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"nixos/nix:latest\"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`[server]
listen = %q
state_dir = %q
[gitlab]
url = %q
[watch]
schedule = "@every 24h"
[[projects]]
path = "group/app"
[store]
dir = %q
[runner]
control = "none"
config_file = %q
[reconcile]
schedule = "@every 24h"
`, addr, filepath.Join(dir, "state"), gl.URL, filepath.Join(dir, "store"), runnerConfig)
	cfgPath := filepath.Join(dir, "hydrafy.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	daemon := nixtest.Hydrafy([]string{"serve", "--config", cfgPath}, "HYDRAFY_WEBHOOK_SECRET="+loadSecret,
		"HYDRAFY_GITLAB_TOKEN="+gl.Token, "HYDRAFY_METRICS_TOKEN="+loadMetrics)
	var daemonLog nixtest.Buffer
	daemon.Stderr = &daemonLog
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			daemon.Process.Kill()
			<-done
		}
	}()
	base := "http://" + addr
	lg := newLoadGen(base)
	if err := lg.waitUp(ctx); err != nil {
		b.Fatalf("daemon not up: %v\n%s", err, daemonLog.String())
	}
	pid := daemon.Process.Pid
	time.Sleep(2 * time.Second) // the start-up pass
	baseline := rssBytes(b, pid)
	fmt.Printf("load: daemon pid %d, RSS at rest %s, min_interval 5s (default)\n", pid, mb(baseline))

	var p99At500 time.Duration
	for _, rate := range []int{500, 2000} {
		for _, kind := range []string{"accepted", "ignored"} {
			passes0, calls0 := lg.passes(b), len(emu.Requests())
			project, want := "group/app", http.StatusAccepted
			if kind == "ignored" {
				project, want = "group/other", http.StatusOK
			}
			n := rate * 3
			res := lg.openLoop(ctx, rate, n, func(i int) *http.Request {
				return lg.webhook(project, fmt.Sprintf("%s-%d-%d", kind, rate, i))
			})
			time.Sleep(6 * time.Second) // a pass still queued by the pace
			passes, calls := lg.passes(b)-passes0, len(emu.Requests())-calls0
			fmt.Printf("load: %-8s webhooks at %4d req/s for 3 s: p50 %8s p99 %8s max %8s, %d of %d not %d; passes started %d, GitLab requests %d\n",
				kind, rate, res.pct(50), res.pct(99), res.pct(100), res.bad(want), n, want, passes, calls)
			if kind == "accepted" && rate == 500 {
				p99At500 = res.pct(99)
			}
		}
	}
	fmt.Printf("load: accepted p99 at 500 req/s %s: %.2f of the 5 ms target\n", p99At500, float64(p99At500)/float64(5*time.Millisecond))

	// 100,000 accepted deliveries with unique 4 KiB keys, 64 at a time:
	// kept whole, the 4,096 ids the dedup holds would take 16 MB.
	peak := newPeakRSS(pid)
	key := strings.Repeat("k", 4<<10-12)
	start := time.Now()
	res := lg.closedLoop(ctx, 64, 100_000, func(i int) *http.Request {
		return lg.webhook("group/app", fmt.Sprintf("%s%012d", key, i))
	})
	took := time.Since(start)
	max := peak.stop()
	after := settledRSS(b, pid, baseline)
	fmt.Printf("load: 100,000 unique 4 KiB keys in %s (%d not 202): RSS peak %s, after %s (%+.1f MB, %.2fx the baseline)\n",
		took.Round(time.Millisecond), res.bad(http.StatusAccepted), mb(max), mb(after), float64(after-baseline)/1e6, float64(after)/float64(baseline))

	// /metrics at 500 req/s for 20 s, webhooks at 50 req/s alongside.
	peak = newPeakRSS(pid)
	var hooks loadResult
	var wg sync.WaitGroup
	wg.Go(func() {
		hooks = lg.openLoop(ctx, 50, 1000, func(i int) *http.Request { return lg.webhook("group/app", fmt.Sprintf("beside-%d", i)) })
	})
	scrapes := lg.openLoop(ctx, 500, 10_000, func(int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+loadMetrics)
		req.Header.Set("Accept-Encoding", "gzip")
		return req
	})
	wg.Wait()
	max = peak.stop()
	after = settledRSS(b, pid, baseline)
	fmt.Printf("load: 10,000 /metrics scrapes at 500 req/s: %d answered 200, %d 503, %d failed, p99 %s; webhooks alongside p99 %s (%d not 202); RSS peak %s, after %s (%+.1f MB, %.2fx the baseline)\n",
		scrapes.count(200), scrapes.count(503), scrapes.count(0), scrapes.pct(99), hooks.pct(99), hooks.bad(http.StatusAccepted),
		mb(max), mb(after), float64(after-baseline)/1e6, float64(after)/float64(baseline))
	fmt.Printf("load: target RSS within 20 MB of the baseline: %+.1f MB after both floods\n", float64(after-baseline)/1e6)
	b.ReportMetric(float64(p99At500.Microseconds())/1000, "p99-ms@500")
	b.ReportMetric(float64(after-baseline)/1e6, "rss-growth-MB")
}

// loadGen sends requests to the daemon over a bounded pool of connections.
type loadGen struct {
	base   string
	client *http.Client
}

func newLoadGen(base string) *loadGen {
	return &loadGen{base: base, client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256, DisableCompression: true,
	}}}
}

func (l *loadGen) waitUp(ctx context.Context) error {
	for {
		resp, err := l.client.Get(l.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *loadGen) webhook(project, key string) *http.Request {
	body := fmt.Sprintf(`{"object_kind":"merge_request","project":{"path_with_namespace":%q,"default_branch":"main"},"object_attributes":{"iid":1,"action":"merge","state":"merged","target_branch":"main"}}`, project)
	req, _ := http.NewRequest(http.MethodPost, l.base+"/webhooks/gitlab", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Token", loadSecret)
	req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
	req.Header.Set("Idempotency-Key", key)
	return req
}

// passes is the number of reconcile passes the daemon finished.
func (l *loadGen) passes(b *testing.B) int {
	req, _ := http.NewRequest(http.MethodGet, l.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+loadMetrics)
	for range 50 {
		resp, err := l.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			n := 0
			for _, m := range regexp.MustCompile(`(?m)^hydrafy_reconciles_total\{[^}]*\} (\d+)`).FindAllStringSubmatch(string(body), -1) {
				v, _ := strconv.Atoi(m[1])
				n += v
			}
			return n
		}
		time.Sleep(100 * time.Millisecond) // 503: scrapes in flight
	}
	b.Fatal("/metrics never answered 200")
	return 0
}

// loadResult holds each request's latency and status (0: no answer).
type loadResult struct {
	lat   []time.Duration
	codes []int
}

func (r loadResult) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(r.lat))
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(10 * time.Microsecond)
}

func (r loadResult) count(code int) int {
	n := 0
	for _, c := range r.codes {
		if c == code {
			n++
		}
	}
	return n
}

func (r loadResult) bad(want int) int { return len(r.codes) - r.count(want) }

func (l *loadGen) do(req *http.Request) (time.Duration, int) {
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		return time.Since(start), 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode
}

// openLoop sends n requests at rate per second whatever the answers, and
// stops early when ctx ends.
func (l *loadGen) openLoop(ctx context.Context, rate, n int, mk func(int) *http.Request) loadResult {
	res := loadResult{lat: make([]time.Duration, n), codes: make([]int, n)}
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			wg.Wait()
			return res
		case <-tick.C:
		}
		req := mk(i)
		wg.Go(func() { res.lat[i], res.codes[i] = l.do(req) })
	}
	wg.Wait()
	return res
}

// closedLoop sends n requests from workers at once, each after the last.
func (l *loadGen) closedLoop(ctx context.Context, workers, n int, mk func(int) *http.Request) loadResult {
	res := loadResult{lat: make([]time.Duration, n), codes: make([]int, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				res.lat[i], res.codes[i] = l.do(mk(i))
			}
		})
	}
	wg.Wait()
	return res
}

func freeLoopbackAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rssBytes reads a process's resident set size.
func rssBytes(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS in /proc/", pid, "/status")
	return 0
}

// settledRSS is the RSS once idle: read each second for up to 15 s, until
// within 20 MB of baseline, as an operator would look a little later.
func settledRSS(b *testing.B, pid int, baseline int64) int64 {
	var rss int64
	for range 15 {
		time.Sleep(time.Second)
		if rss = rssBytes(b, pid); rss-baseline < 20e6 {
			break
		}
	}
	return rss
}

// peakRSS samples a process's RSS every 50 ms until stopped.
type peakRSS struct {
	done chan struct{}
	max  atomic.Int64
	wg   sync.WaitGroup
}

func newPeakRSS(pid int) *peakRSS {
	p := &peakRSS{done: make(chan struct{})}
	p.wg.Go(func() {
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			if b, err := os.ReadFile(path); err == nil {
				if m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b); m != nil {
					v, _ := strconv.ParseInt(string(m[1]), 10, 64)
					if v*1024 > p.max.Load() {
						p.max.Store(v * 1024)
					}
				}
			}
			select {
			case <-p.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	return p
}

func (p *peakRSS) stop() int64 { close(p.done); p.wg.Wait(); return p.max.Load() }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
