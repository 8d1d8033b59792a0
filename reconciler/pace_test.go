package reconciler

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// runLoop runs rec.Run until the test ends.
func runLoop(t *testing.T, rec *Reconciler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPaceSpacesPasses: a pass triggered right after another starts no
// sooner than MinInterval after it.
func TestPaceSpacesPasses(t *testing.T) {
	const interval = 300 * time.Millisecond
	r := newRig(t)
	r.opts.Now = time.Now
	r.opts.MinInterval = interval
	rec := r.reconciler(t)
	runLoop(t, rec)
	first := rec.Trigger(Reason{Kind: KindWebhook}).Report()
	second := rec.Trigger(Reason{Kind: KindWebhook}).Report()
	if gap := second.Started.Sub(first.Started); gap < interval {
		t.Errorf("second pass started %s after the first, want at least %s", gap, interval)
	}
}

// TestPaceImmediate: with a pace of an hour, a queued pass waits; an
// immediate trigger (POST /resync?wait=1) joins it and starts it at once.
func TestPaceImmediate(t *testing.T) {
	r := newRig(t)
	r.opts.MinInterval = time.Hour
	var runs atomic.Int32
	r.opts.OnReport = func(Report) { runs.Add(1) }
	rec := r.reconciler(t)
	runLoop(t, rec)
	if rep := rec.Trigger(Reason{Kind: KindStartup}).Report(); rep.Result != ResultOK {
		t.Fatalf("first pass: %s %s", rep.Result, rep.Error)
	}
	queued := rec.Trigger(Reason{Kind: KindWebhook})
	select {
	case <-queued.Done():
		t.Fatal("a webhook pass ran within the pace")
	case <-time.After(200 * time.Millisecond):
	}
	if !rec.Status().Queued {
		t.Error("status does not show the queued pass")
	}
	now := rec.Trigger(Reason{Kind: KindResync, Immediate: true})
	if now != queued {
		t.Fatal("the immediate trigger did not join the queued pass")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := now.Wait(ctx); err != nil {
		t.Fatalf("the immediate pass never ran: %v", err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d passes, want 2", n)
	}
}

// TestPassCountsGitLabRequests: a pass through the GitLab client counts the
// requests it sent, retries included, and the transport reports each.
func TestPassCountsGitLabRequests(t *testing.T) {
	g := nixtest.NewGitLab(t, gitlabemu.Options{})
	emu := g.Emu
	for _, p := range []string{"group/a", "group/b", "group/c"} {
		g.Project(t, p, map[string]string{".gitlab-ci.yml": "image: nixos/nix\n"})
	}
	var observed atomic.Int64
	var throttled atomic.Int64
	tr := CountingTransport{Observe: func(status int) {
		observed.Add(1)
		if status == http.StatusTooManyRequests {
			throttled.Add(1)
		}
	}}
	gl, err := gitlab.NewClient(g.Token, gitlab.WithBaseURL(g.URL),
		gitlab.WithHTTPClient(&http.Client{Transport: tr}),
		gitlab.WithCustomRetryMax(2), gitlab.WithCustomRetryWaitMinMax(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	r.opts.Repo = GitLabRepo{Client: gl}
	rec := r.reconciler(t)
	emu.FailNext("", "group%2Fb", http.StatusTooManyRequests, 1) // one retry
	rep := rec.Once(context.Background(), Reason{Kind: KindManual})
	sent := int64(len(emu.Requests()))
	if sent == 0 || rep.GitLabRequests != sent {
		t.Errorf("report counts %d GitLab requests, the emulator answered %d", rep.GitLabRequests, sent)
	}
	if observed.Load() != sent || throttled.Load() != 1 {
		t.Errorf("transport observed %d requests (%d throttled), want %d (1)", observed.Load(), throttled.Load(), sent)
	}
}

// TestLookupDefaultBranch: an unobserved watched project's branch is asked
// of GitLab once and kept; an unwatched one is refused without asking.
func TestLookupDefaultBranch(t *testing.T) {
	r := newRig(t)
	var asked atomic.Int32
	r.opts.Repo = countingRepo{Repo: r.repo, n: &asked}
	rec := r.reconciler(t)
	for range 3 {
		b, err := rec.LookupDefaultBranch(context.Background(), "Group/A")
		if err != nil || b != "main" {
			t.Fatalf("LookupDefaultBranch = %q, %v", b, err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("GitLab asked %d times, want 1", n)
	}
	if _, err := rec.LookupDefaultBranch(context.Background(), "group/other"); err == nil {
		t.Error("an unwatched project's branch was looked up")
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("GitLab asked %d times, want 1", n)
	}
}

type countingRepo struct {
	Repo
	n *atomic.Int32
}

func (c countingRepo) DefaultBranch(ctx context.Context, project string) (string, error) {
	c.n.Add(1)
	return c.Repo.DefaultBranch(ctx, project)
}
