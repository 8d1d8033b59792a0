package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest/fakestore"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// TestMain lets the test binary be the stand-in runner (nixtest.StandinMain:
// gitlab-runner cannot be built here; the stand-in follows its signal
// contract), hydrafy itself (nixtest.Hydrafy), or, as the child
// "hanging-daemon", a `hydrafy serve` of the config file in
// HYDRAFY_TEST_DAEMON whose store commit hangs, for the kill -9 test.
func TestMain(m *testing.M) {
	nixtest.StandinMain()
	nixtest.HydrafyMain(main) // `hydrafy` itself, for the fleet's daemons
	if nixtest.Child() == "hanging-daemon" {
		os.Exit(hangingDaemon(os.Getenv(daemonEnv)))
	}
	os.Exit(m.Run())
}

const (
	e2eBotToken = "glpat-hydrafy-e2e"
	e2eSecret   = "webhook-secret-e2e"
	e2eResync   = "resync-token-e2e"
	e2eDigest   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

// lockStager stands in for the store until it is merged: Stage records the
// digest, Commit takes the live store's big-lock exclusively (it fails
// while a job of the stand-in holds it) and writes a marker under the store.
type lockStager struct {
	dir string

	mu      sync.Mutex
	commits []string
}

// Sweep removes stale staging areas as the real stager does.
func (s *lockStager) Sweep(ctx context.Context) error { return seed.SweepStaging(ctx, s.dir, nil) }

// Stage returns the stand-in of ref's store, committed by commit.
func (s *lockStager) Stage(ctx context.Context, ref string) (reconciler.Staged, error) {
	return fakestore.Stager{Commit: s.commit}.Stage(ctx, ref)
}

func (s *lockStager) commit(_ context.Context, digest string) (reconciler.CommitReport, error) {
	lock := filepath.Join(s.dir, standin.BigLock)
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		return reconciler.CommitReport{}, err
	}
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return reconciler.CommitReport{}, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return reconciler.CommitReport{}, fmt.Errorf("taking the big-lock: %w", err)
	}
	marker := filepath.Join(s.dir, "nix/store", strings.TrimPrefix(digest, "sha256:")[:32]+"-seeded")
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		return reconciler.CommitReport{}, err
	}
	if err := os.WriteFile(marker, []byte(digest), 0o444); err != nil {
		return reconciler.CommitReport{}, err
	}
	s.mu.Lock()
	s.commits = append(s.commits, digest)
	s.mu.Unlock()
	return reconciler.CommitReport{PathsAdded: 1, BytesAdded: 64, PathsTotal: 1, BytesTotal: 64}, nil
}

// e2e is one runner host: the GitLab emulator with a watched project and
// its runner, a stand-in runner process driven by the command control, and
// the config of a `hydrafy serve` for them.
type e2e struct {
	emu      *gitlabemu.Server
	gl       *gitlab.Client
	runnerID int64
	dir      string
	store    string
	status   string
	cfg      config.Config
	first    standin.Status // the stand-in as first started
	base     string         // the daemon's URL once serving
}

// newE2E sets the host up; prepare, if set, runs on the store dir before
// the stand-in starts (and its jobs lock the store).
func newE2E(t *testing.T, image, ci string, prepare func(store string)) *e2e {
	t.Helper()
	gts := nixtest.NewGitLab(t, gitlabemu.Options{HookBackoff: 10 * time.Millisecond})
	e := &e2e{emu: gts.Emu}
	e.emu.AddToken(e2eBotToken, "hydrafy-bot")
	gts.Project(t, "group/app", map[string]string{".gitlab-ci.yml": ci})
	e.runnerID = e.emu.AddRunner("nix host", "glrt-e2e")
	gl, err := gitlab.NewClient(e2eBotToken, gitlab.WithBaseURL(gts.URL))
	if err != nil {
		t.Fatal(err)
	}
	e.gl = gl

	e.dir = t.TempDir()
	e.store = filepath.Join(e.dir, "store")
	sr := newStandin(t, e.dir, e.store)
	e.status = sr.Status
	if prepare != nil {
		prepare(e.store)
	}
	e.first = sr.Start(t, standinFlags...)
	start, stop, runnerConfig := sr.StartArgs(standinFlags...), sr.StopArgs(), sr.Config

	cfg := config.Default()
	cfg.GitLab.URL = gts.URL
	cfg.GitLab.Token = e2eBotToken
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.StateDir = filepath.Join(e.dir, "state")
	cfg.Server.WebhookSecret = e2eSecret
	cfg.Server.ResyncToken = e2eResync
	cfg.Projects = []config.Project{{Path: "group/app", Files: []string{".gitlab-ci.yml"}}}
	cfg.Store.Dir = e.store
	cfg.Store.Platform = "linux/amd64"
	cfg.Runner = config.Runner{Control: "command", StopCommand: stop, StartCommand: start, ConfigFile: runnerConfig,
		ID: int(e.runnerID), DrainTimeout: config.Duration(30 * time.Second), PinImage: true}
	cfg.Watch.Image = image
	cfg.Watch.Schedule = "@every 24h"
	cfg.Reconcile.Schedule = "@every 24h"
	cfg.Reconcile.MinInterval = config.Duration(100 * time.Millisecond)
	e.cfg = cfg
	return e
}

// stager is the daemon's real stager for the host's config.
func (e *e2e) stager(t *testing.T) reconciler.Stager {
	t.Helper()
	stager, err := newStager(e.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return stager
}

// newStandin lays out, in dir, a runner whose jobs use the live store at
// store, with its config.toml; Start starts it.
func newStandin(t *testing.T, dir, store string) *nixtest.Standin {
	t.Helper()
	r := nixtest.NewStandin(t, dir, store)
	r.WriteConfig(t, "")
	return r
}

// standinFlags are the stand-in's flags on a host: endless short jobs,
// quick reloads.
var standinFlags = []string{"-jobs=-1", "-job-duration=100ms", "-reload-interval=50ms"}

// serve runs `hydrafy serve` with stager until the test ends, and adds the
// project hook that points at it.
func (e *e2e) serve(t *testing.T, stager reconciler.Stager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	served := make(chan error, 1)
	var logs nixtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { served <- serve(ctx, e.cfg, log, stager, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		e.base = "http://" + a
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if strings.Contains(logs.String(), e2eSecret) || strings.Contains(logs.String(), e2eBotToken) {
			t.Errorf("a secret reached the log")
		}
	})
	if _, err := e.emu.AddHook("group/app", e.base+"/webhooks/gitlab", e2eSecret); err != nil {
		t.Fatal(err)
	}
}

// mergePin proposes ci as the project's CI file in a merge request and
// merges it, as a maintainer would merge the proposer's merge request.
func (e *e2e) mergePin(t *testing.T, ci string) {
	t.Helper()
	if _, err := e.emu.Push("group/app", "hydrafy/nixos-nix-digest", "hydrafy-bot", "Pin nixos/nix", map[string]string{".gitlab-ci.yml": ci}); err != nil {
		t.Fatal(err)
	}
	mr, _, err := e.gl.MergeRequests.CreateMergeRequest("group/app", &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("Pin nixos/nix"), SourceBranch: gitlab.Ptr("hydrafy/nixos-nix-digest"), TargetBranch: gitlab.Ptr("main"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.Merge("group/app", int64(mr.IID), "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
}

// seedingRun waits until digest is seeded and nothing runs or waits, and
// returns the pass that seeded it.
func (e *e2e) seedingRun(t *testing.T, digest string) reconciler.Report {
	t.Helper()
	st := waitStatus(t, e.base, digest+" seeded", func(s statusJSON) bool {
		for _, x := range s.Seeded {
			if x.Digest == digest {
				return s.Current == nil && !s.Queued
			}
		}
		return false
	})
	for _, r := range st.Recent {
		if slices.Contains(r.Seeded, digest) {
			return r
		}
	}
	t.Fatalf("no recent pass seeded %s: %+v", digest, st.Recent)
	return reconciler.Report{}
}

// checkRestarted checks that the stand-in was stopped gracefully and a new
// process runs with the pinned image and the store mounts.
func (e *e2e) checkRestarted(t *testing.T, image string) standin.Status {
	t.Helper()
	now, err := standin.ReadStatus(e.status)
	if err != nil {
		t.Fatal(err)
	}
	if now.PID == e.first.PID || now.State != standin.StateRunning || !standin.Alive(now.PID) {
		t.Errorf("stand-in not restarted: before pid %d, now %+v", e.first.PID, now)
	}
	if now.Image != image {
		t.Errorf("stand-in runs with image %q, want %q", now.Image, image)
	}
	if want := e.store + "/nix/store:/nix/store:rw"; !strings.Contains(strings.Join(now.Volumes, " "), want) {
		t.Errorf("stand-in volumes %v lack %s", now.Volumes, want)
	}
	if paused, err := e.emu.RunnerPaused(e.runnerID); err != nil || paused {
		t.Errorf("runner paused = %v, %v after the reconcile", paused, err)
	}
	return now
}

// TestMergeWebhookReconciles: a merge request that pins a new digest is
// merged in the GitLab emulator; its webhook reaches `hydrafy serve`, which
// drains the stand-in runner (paused through the API, stopped with SIGQUIT),
// commits while no job holds the store, pins config.toml, starts the runner
// again and reports it in /status and /metrics.
func TestMergeWebhookReconciles(t *testing.T) {
	e := newE2E(t, "nixos/nix", "build:\n  image: nixos/nix:latest\n  script: [nix build]\n", nil)
	stager := &lockStager{dir: e.store}
	e.serve(t, stager)

	// The start-up pass finds nothing pinned: it only mounts the store.
	st := waitStatus(t, e.base, "the start-up pass", func(s statusJSON) bool { return s.Last != nil })
	if st.Last.Result != reconciler.ResultOK || len(st.Seeded) != 0 {
		t.Fatalf("start-up pass: %+v", st.Last)
	}

	e.mergePin(t, "build:\n  image: nixos/nix:latest@"+e2eDigest+"\n  script: [nix build]\n")
	rep := e.seedingRun(t, e2eDigest)
	if rep.Result != reconciler.ResultOK || !strings.HasPrefix(rep.Reasons[0], "webhook: ") {
		t.Fatalf("seeding pass: %+v", rep)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	if got, want := strings.Join(names, " "), "read-pins stage preflight pause wait-idle stop commit configure start running unpause"; got != want {
		t.Errorf("steps = %s, want %s", got, want)
	}
	if rep.DowntimeSeconds <= 0 {
		t.Errorf("downtime %v", rep.DowntimeSeconds)
	}
	now := e.checkRestarted(t, "nixos/nix@"+e2eDigest)
	if len(stager.commits) != 1 {
		t.Errorf("commits = %v, want one", stager.commits)
	}
	if err := e.emu.WaitHooks(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range e.emu.Deliveries() {
		if !d.OK() {
			t.Errorf("delivery %s answered %d", d.Event, d.Status)
		}
	}

	waitMetrics(t, e.base,
		`hydrafy_webhooks_total{event="merge_request",result="accepted"} 1`,
		"hydrafy_runner_downtime_seconds_count 1",
		"hydrafy_store_paths 1",
	)

	// A resync now finds everything seeded and leaves the runner alone.
	req, _ := http.NewRequest(http.MethodPost, e.base+"/resync?wait=1", nil)
	req.Header.Set("Authorization", "Bearer "+e2eResync)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var again reconciler.Report
	err = json.NewDecoder(resp.Body).Decode(&again)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || again.Result != reconciler.ResultNoop {
		t.Errorf("resync: %d %+v %v", resp.StatusCode, again, err)
	}
	if s, _ := standin.ReadStatus(e.status); s.PID != now.PID {
		t.Errorf("resync restarted the runner: pid %d → %d", now.PID, s.PID)
	}
}

func TestServeRefusesWithoutSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hydrafy.toml")
	if err := os.WriteFile(path, []byte("[gitlab]\nurl = \"http://127.0.0.1:1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", "")
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"serve", "--config", path}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no webhook secret") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("exit %d, stderr %q: want 1 and one line naming the missing secret", code, stderr.String())
	}
}

// TestServeWarnsOfReadableSecretFile: a secret file that group or others
// may read is named at start, without its content.
func TestServeWarnsOfReadableSecretFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "webhook_secret")
	if err := os.WriteFile(secret, []byte("readable-webhook-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hydrafy.toml")
	if err := os.WriteFile(path, fmt.Appendf(nil, "[server]\nwebhook_secret_file = %q\n[gitlab]\nurl = \"http://127.0.0.1:1\"\n", secret), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", "")
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "")
	var stdout, stderr strings.Builder
	run(context.Background(), []string{"serve", "--config", path}, &stdout, &stderr)
	out := stderr.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, secret+" is readable by group or others (mode 0644)") {
		t.Errorf("no warning naming %s:\n%s", secret, out)
	}
	if strings.Contains(out, "readable-webhook-secret") {
		t.Errorf("the secret reached the log:\n%s", out)
	}
}

type statusJSON struct {
	Tracked  string `json:"tracked_digest"`
	Projects []struct {
		Path         string `json:"path"`
		MergeRequest *struct {
			IID int `json:"iid"`
		} `json:"merge_request"`
	} `json:"projects"`
	Seeded  []reconciler.Seeded `json:"seeded"`
	Current *reconciler.Report  `json:"current"`
	Queued  bool                `json:"queued"`
	Last    *reconciler.Report  `json:"last"`
	Recent  []reconciler.Report `json:"recent"`
}

func waitStatus(t *testing.T, base, what string, cond func(statusJSON) bool) statusJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var s statusJSON
		body := httpGet(t, base+"/status")
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached %s; status:\n%s", what, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getStatus(t *testing.T, base string) statusJSON {
	t.Helper()
	var s statusJSON
	if err := json.Unmarshal([]byte(httpGet(t, base+"/status")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitMetrics waits until /metrics holds every line of want: a pass's
// report reaches the metrics a moment after /status shows it finished.
func waitMetrics(t *testing.T, base string, want ...string) {
	t.Helper()
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	for {
		metrics = httpGet(t, base+"/metrics")
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(metrics, w) })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, w := range missing {
				t.Errorf("metrics lack %q", w)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	_, body := nixtest.Get(t, url)
	return body
}
