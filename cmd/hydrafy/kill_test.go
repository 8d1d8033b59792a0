package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest/fakestore"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

const daemonEnv = "HYDRAFY_TEST_DAEMON"

// hangingStager's commit announces itself in the file mark and never
// returns. Its stage leaves a staging area in the store dir, locked as a
// real one is, so that the kill leaves it behind.
func hangingStager(mark, store string) fakestore.Stager {
	return fakestore.Stager{
		Staging: func(context.Context, string) error {
			area := filepath.Join(store, ".hydrafy-stage-killed")
			if err := os.MkdirAll(filepath.Join(area, "nix/store"), 0o755); err != nil {
				return err
			}
			f, err := os.Open(area)
			if err != nil {
				return err
			}
			// Held until the process dies: the flock is what tells a staging area
			// in use from a stale one.
			return unix.Flock(int(f.Fd()), unix.LOCK_EX)
		},
		Commit: func(_ context.Context, digest string) (reconciler.CommitReport, error) {
			if err := os.WriteFile(mark, []byte(digest), 0o644); err != nil {
				return reconciler.CommitReport{}, err
			}
			select {} // killed here
		},
	}
}

// hangingDaemon is `hydrafy serve` with the config at path and a commit
// that hangs; it is killed by the test.
func hangingDaemon(path string) int {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	err = serve(context.Background(), cfg, log, hangingStager(filepath.Join(cfg.Server.StateDir, "..", "committing"), cfg.Store.Dir), nil)
	fmt.Fprintln(os.Stderr, "daemon returned:", err)
	return 1
}

// TestKilledDaemonConverges: `hydrafy serve` is killed with SIGKILL while
// it commits, with the runner paused in GitLab and the stand-in stopped. A
// `hydrafy reconcile` afterwards starts and unpauses the runner and seeds
// the digest, without manual steps.
func TestKilledDaemonConverges(t *testing.T) {
	gl := nixtest.NewGitLab(t, gitlabemu.Options{})
	gl.Emu.AddToken(e2eBotToken, "hydrafy-bot")
	gl.Project(t, "group/app", map[string]string{".gitlab-ci.yml": "build:\n  image: nixos/nix@" + e2eDigest + "\n"})
	emu := gl.Emu
	runnerID := emu.AddRunner("nix host", "glrt-e2e")

	dir := t.TempDir()
	sr := nixtest.NewStandin(t, dir, "")
	sr.WriteConfig(t, "[[runners]]\n  name = \"nix\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine\"\n")
	store, status, runnerConfig := sr.Store, sr.Status, sr.Config
	sr.Start(t, "-jobs=-1", "-job-duration=50ms")
	start, stop := sr.StartArgs("-jobs=-1", "-job-duration=50ms"), sr.StopArgs()

	toml := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
state_dir = %q
[gitlab]
url = %q
[[projects]]
path = "group/app"
[store]
dir = %q
[runner]
control = "command"
stop_command = %s
start_command = %s
config_file = %q
id = %d
drain_timeout = "30s"
[watch]
schedule = "@every 24h"
[reconcile]
schedule = "@every 24h"
`, filepath.Join(dir, "state"), gl.URL, store, tomlList(stop), tomlList(start), runnerConfig, runnerID)
	cfgPath := filepath.Join(dir, "hydrafy.toml")
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", e2eSecret)
	t.Setenv("HYDRAFY_GITLAB_TOKEN", e2eBotToken)

	daemon := nixtest.Command("hanging-daemon", daemonEnv+"="+cfgPath)
	if !nixtest.Kill(t, daemon, nixtest.KillPoint{Mark: filepath.Join(dir, "committing")}) {
		t.Fatal("the daemon returned; its commit should have hung")
	}

	// What the kill left behind: runner paused, stand-in stopped.
	if paused, err := emu.RunnerPaused(runnerID); err != nil || !paused {
		t.Fatalf("runner paused = %v, %v after the kill; want paused", paused, err)
	}
	if s, err := standin.ReadStatus(status); err != nil || standin.Alive(s.PID) {
		t.Fatalf("stand-in %+v (%v) after the kill; want stopped", s, err)
	}

	cfg, err := config.Load(cfgPath, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	stager := &lockStager{dir: store}
	var out bytes.Buffer
	if err := reconcileOnce(context.Background(), cfg, slog.New(slog.DiscardHandler), stager, false, &out); err != nil {
		t.Fatalf("reconcile after the kill: %v\n%s", err, out.String())
	}
	for _, want := range []string{"result:   ok", "recovery: ", "runner started and unpaused first (down ", "seeded:   " + e2eDigest} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("reconcile output lacks %q:\n%s", want, out.String())
		}
	}
	// The downtime runs from the killed pass's stop, recorded in state.
	if strings.Contains(out.String(), "(down 0.000s") || strings.Contains(out.String(), "downtime: 0.000s") {
		t.Errorf("the recovery reports no downtime since the killed pass's stop:\n%s", out.String())
	}
	if paused, err := emu.RunnerPaused(runnerID); err != nil || paused {
		t.Errorf("runner paused = %v, %v after the reconcile", paused, err)
	}
	s, err := standin.ReadStatus(status)
	if err != nil || !standin.Alive(s.PID) || s.State != standin.StateRunning {
		t.Errorf("stand-in %+v (%v) after the reconcile; want running", s, err)
	}
	if len(stager.commits) != 1 {
		t.Errorf("commits %v, want one", stager.commits)
	}
	if _, err := os.Stat(filepath.Join(store, ".hydrafy-stage-killed")); !os.IsNotExist(err) {
		t.Errorf("the killed daemon's staging area is still there after the recovery: %v", err)
	}
}

func tomlList(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
