package main

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestGitLabClientHonoursRetryAfter: the daemon's client, throttled by
// GitLab's 429 with Retry-After, waits that long before it asks again,
// then succeeds; each attempt is reported.
func TestGitLabClientHonoursRetryAfter(t *testing.T) {
	gl := nixtest.NewGitLab(t, gitlabemu.Options{})
	emu := gl.Emu
	gl.Project(t, "group/app", map[string]string{".gitlab-ci.yml": "image: nixos/nix\n"})
	cfg := config.Default()
	cfg.GitLab.URL = gl.URL
	cfg.GitLab.Token = config.Secret(gl.Token)
	var answers []int
	var n atomic.Int32
	client, err := newGitLabClient(cfg, func(status int) { n.Add(1); answers = append(answers, status) })
	if err != nil {
		t.Fatal(err)
	}
	// Longer than the first waits of the daemon's backoff (500 ms, then
	// doubling): only Retry-After makes the client wait this long.
	const retryAfter = 2 * time.Second
	emu.RateLimitNext(http.MethodGet, "projects/group%2Fapp", 1, retryAfter)
	p, _, err := client.Projects.GetProject("group/app", nil, gitlab.WithContext(context.Background()))
	if err != nil || p.DefaultBranch != "main" {
		t.Fatalf("GetProject after a 429: %v, %v", p, err)
	}
	reqs := emu.Requests()
	if len(reqs) != 2 || reqs[0].Status != http.StatusTooManyRequests || reqs[1].Status != http.StatusOK {
		t.Fatalf("emulator answered %+v, want a 429 then a 200", reqs)
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < retryAfter {
		t.Errorf("retried %s after the 429, want at least Retry-After %s", gap, retryAfter)
	}
	if n.Load() != 2 || answers[0] != 429 || answers[1] != 200 {
		t.Errorf("client reported %v, want [429 200]", answers)
	}
}

// TestEmulatorThrottleAnswer: the emulator's 429 carries what GitLab's
// throttle sends: Retry-After, RateLimit-* and a plain-text body.
func TestEmulatorThrottleAnswer(t *testing.T) {
	gl := nixtest.NewGitLab(t, gitlabemu.Options{})
	gl.Emu.RateLimitNext("", "projects", 1, 1500*time.Millisecond)
	resp, err := http.Get(gl.URL + "/api/v4/projects/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("RateLimit-Remaining") != "0" ||
		resp.Header.Get("RateLimit-Reset") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("throttle answer %d %v", resp.StatusCode, resp.Header)
	}
}
