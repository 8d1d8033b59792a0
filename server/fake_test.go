package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest/fakestore"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

const (
	testSecret = "s3cret-webhook-token"
	testResync = "resync-bearer-token"
	digestA    = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// repo serves one CI file per project, all on branch "main"; with
// branchErr set, asking for a default branch fails.
type repo struct {
	files     map[string]string
	branchErr error
}

func (r *repo) DefaultBranch(context.Context, string) (string, error) {
	if r.branchErr != nil {
		return "", r.branchErr
	}
	return "main", nil
}

func (r *repo) ReadFile(_ context.Context, project, file, ref string) ([]byte, error) {
	s, ok := r.files[project+":"+file]
	if !ok || ref != "main" {
		return nil, reconciler.ErrNotFound
	}
	return []byte(s), nil
}

func findDigests(src []byte, image string) ([]reconciler.Pin, error) {
	var pins []reconciler.Pin
	for i, line := range strings.Split(string(src), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "+image+"@"); ok {
			pins = append(pins, reconciler.Pin{Line: i + 1, Raw: image + "@" + v, Digest: v})
		}
	}
	return pins, nil
}

// runner records its calls; hook runs first in every call.
type runner struct {
	mu    sync.Mutex
	calls []string
	hook  func(method string)
}

func (r *runner) do(m string) error {
	if r.hook != nil {
		r.hook(m)
	}
	r.mu.Lock()
	r.calls = append(r.calls, m)
	r.mu.Unlock()
	return nil
}

func (r *runner) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *runner) Preflight(context.Context) error        { return r.do("preflight") }
func (r *runner) Paused(context.Context) (bool, error)   { return false, nil }
func (r *runner) Pause(context.Context) error            { return r.do("pause") }
func (r *runner) Unpause(context.Context) error          { return r.do("unpause") }
func (r *runner) WaitIdle(context.Context) error         { return r.do("wait-idle") }
func (r *runner) Stop(context.Context) error             { return r.do("stop") }
func (r *runner) Start(context.Context) error            { return r.do("start") }
func (r *runner) Running(context.Context) (bool, error)  { return true, nil }
func (r *runner) Configure(string, string) (bool, error) { return false, r.do("configure") }

// stager stages any digest; commitHook, when set, runs before each commit.
func stager(commitHook func()) fakestore.Stager {
	return fakestore.Stager{Commit: func(context.Context, string) (reconciler.CommitReport, error) {
		if commitHook != nil {
			commitHook()
		}
		return reconciler.CommitReport{PathsAdded: 2, BytesAdded: 2048, PathsTotal: 10, BytesTotal: 8192}, nil
	}}
}

// counting counts triggers on top of a real reconciler; statusHook, if
// set, runs in every Status call.
type counting struct {
	*reconciler.Reconciler
	n          atomic.Int32
	statusHook func()
}

func (c *counting) Status() reconciler.Status {
	if c.statusHook != nil {
		c.statusHook()
	}
	return c.Reconciler.Status()
}

func (c *counting) Trigger(r reconciler.Reason) *reconciler.Ticket {
	c.n.Add(1)
	return c.Reconciler.Trigger(r)
}

type rig struct {
	repo    *repo
	rec     *counting
	runner  *runner
	metrics *Metrics
	opts    Options
}

func newRig(t testing.TB, st fakestore.Stager) *rig {
	t.Helper()
	r := &rig{runner: &runner{}, metrics: NewMetrics(),
		repo: &repo{files: map[string]string{"group/app:.gitlab-ci.yml": "build:\n  image: nixos/nix@" + digestA + "\n"}}}
	rec, err := reconciler.New(reconciler.Options{
		Image:    "nixos/nix",
		Projects: []reconciler.Project{{Path: "group/app", Files: []string{".gitlab-ci.yml"}}},
		StoreDir: t.TempDir(),
		PinImage: true,
		StateDir: t.TempDir(),
		Repo:     r.repo,
		Find:     findDigests,
		Stager:   st,
		Runner:   r.runner,
		OnReport: r.metrics.ObserveReport,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.rec = &counting{Reconciler: rec}
	r.opts = Options{
		WebhookSecret: testSecret,
		ResyncToken:   testResync,
		Projects:      []string{"group/app"},
		Reconciler:    r.rec,
		Metrics:       r.metrics,
	}
	return r
}

func (r *rig) server(t testing.TB) *Server {
	t.Helper()
	s, err := New(r.opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func configSecret(s string) config.Secret { return config.Secret(s) }

var resyncReason = reconciler.Reason{Kind: reconciler.KindResync, Detail: "test"}
