package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/demo"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/runner"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// demoOptions configure `hydrafy demo`.
type demoOptions struct {
	dir    string   // work dir; "" = a temp dir removed at the end
	listen string   // the demo daemon's address
	exit   bool     // leave after the cycle instead of serving until Ctrl-C
	live   bool     // [store] merge = "live": upgrade while a job runs
	runner []string // command that runs the stand-in runner ("hydrafy standin")
	// done, when set, is called with the finished cycle before shutdown.
	done func(*demoCycle)
}

// demoCycle is what a finished demo cycle leaves behind for a look.
type demoCycle struct {
	env      *demo.Env
	cfg      config.Config
	url      string     // the daemon's base URL
	status   demoStatus // GET /status after the cycle, once the daemon is idle
	proposal *demoPass  // the reconcile the bot's proposal started
	merged   *demoPass  // the reconcile the merge webhook started
	cached   string     // the store path a "job" built before the upgrade
	// runnerBefore and runnerAfter are the stand-in's status at its first
	// start and after the cycle.
	runnerBefore, runnerAfter standin.Status
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "usage: hydrafy demo [--live] [--dir DIR] [--listen ADDR] [--exit]\n\nThe whole cycle on this machine with no network: an embedded registry,\nthe GitLab emulator and a stand-in runner. It prints each step and then\nserves until Ctrl-C for a look at /status. With --live the new release\nis merged while the runner serves one long job (no drain, no restart).", stdout, stderr)
	var o demoOptions
	fs.StringVar(&o.dir, "dir", "", "work `DIR` to keep (default: a temp dir, removed at exit)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8780", "`ADDR` of the demo daemon (falls back to a free port)")
	fs.BoolVar(&o.exit, "exit", false, "exit after the cycle instead of serving until Ctrl-C")
	fs.BoolVar(&o.live, "live", false, "merge live ([store] merge = \"live\"): the runner serves one long job through the whole upgrade")
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the hydrafy binary for the stand-in runner: %w", err)
	}
	o.runner = []string{exe, "standin"}
	return demoRun(ctx, o, stdout, stderr)
}

// demoRun is the whole demo: set up the world, seed the live store, start
// the stand-in runner and the daemon, publish a new release, let the bot
// propose it, merge one MR, and follow the reconcile the webhook starts.
func demoRun(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (err error) {
	p := &demoPrinter{w: stdout, start: time.Now()}
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "hydrafy-demo-")
		if err != nil {
			return err
		}
		defer fsutil.RemoveTree(tmp)
		o.dir = tmp
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(o.dir, "hydrafy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, nil))

	p.step("building two nixos/nix releases (2.24.9, 2.25.0), the registry and the GitLab emulator")
	env, err := demo.Setup(ctx, o.dir)
	if err != nil {
		return err
	}
	defer env.Close()
	a, b := env.Releases[0], env.Releases[1]
	p.done("registry %s: nixos/nix:latest = %s (%s); GitLab %s: %s pin it",
		env.Registry, a.Version, short(a.Digest), env.GitLabURL, strings.Join(env.Projects, ", "))

	p.step("seeding the live store %s from %s", env.StoreDir(), a.Version)
	res, err := seed.Seed(ctx, env.Image()+"@"+a.Digest, seed.Options{Store: env.StoreDir(), Log: log})
	if err != nil {
		return fmt.Errorf("seeding the live store: %w", err)
	}
	p.done("%d store paths, %s", res.Paths, humanBytes(res.Bytes))

	p.step("a CI job builds hello-2.12 into the shared store (the cache hydrafy must keep)")
	cached, err := demo.BuildCached(ctx, env)
	if err != nil {
		return err
	}
	p.done("%s", cached)

	cfg, err := demoConfig(env, o)
	if err != nil {
		return err
	}
	if o.live {
		p.step("starting the stand-in runner with one long job that keeps the store open (as a job's Nix does)")
	} else {
		p.step("starting the stand-in runner (follows gitlab-runner's signals: SIGQUIT drains)")
	}
	if err := writeRunnerConfig(cfg.Runner.ConfigFile, env, env.Image()+"@"+a.Digest); err != nil {
		return err
	}
	run, err := runner.New(demoRunnerOptions(cfg), nil, log)
	if err != nil {
		return err
	}
	if err := run.Start(ctx); err != nil {
		return fmt.Errorf("starting the stand-in runner: %w", err)
	}
	stopper := run
	if o.live {
		// The long job would hold a graceful stop for minutes: at the
		// end of the demo it is aborted with the runner.
		ro := demoRunnerOptions(cfg)
		ro.StopCommand = append(append([]string(nil), ro.StopCommand...), "-signal", "TERM")
		if stopper, err = runner.New(ro, nil, log); err != nil {
			return err
		}
	}
	defer func() {
		if stopErr := stopper.Stop(context.WithoutCancel(ctx)); stopErr != nil {
			fmt.Fprintf(stderr, "hydrafy demo: stopping the stand-in runner: %v\n", stopErr)
		}
	}()
	statusFile := filepath.Join(env.RunnerDir(), "status.json")
	before, err := standin.ReadStatus(statusFile)
	for deadline := time.Now().Add(10 * time.Second); o.live && err == nil && before.JobsRunning == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		before, err = standin.ReadStatus(statusFile)
	}
	if err != nil {
		return err
	}
	if o.live {
		p.done("runner pid %d, config %s; job #1 running (%d done so far)", before.PID, cfg.Runner.ConfigFile, before.JobsDone)
	} else {
		p.done("runner pid %d, config %s", before.PID, cfg.Runner.ConfigFile)
	}

	stager, err := newStager(cfg, log)
	if err != nil {
		return err
	}
	srv, closeDaemon, err := newServer(cfg, log, stager, nil)
	if err != nil {
		return err
	}
	defer closeDaemon()
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	url := "http://" + ln.Addr().String()
	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	defer func() {
		stopServe()
		if serr := <-served; serr != nil && err == nil {
			err = serr
		}
	}()
	if err := env.HookAll(url+"/webhooks/gitlab", cfg.Server.WebhookSecret.Reveal()); err != nil {
		return err
	}
	p.step("hydrafy serve on %s; first reconcile checks what the live store holds", url)
	startup, err := p.follow(ctx, url, "")
	if err != nil {
		return err
	}
	p.done("result %s: seeded %s", startup.Result, strings.Join(shortAll(startup.Seeded), ", "))

	p.step("publishing nixos/nix %s as latest", b.Version)
	if err := env.Publish(1); err != nil {
		return err
	}
	p.done("latest = %s", short(b.Digest))

	p.step("watch pass: resolve latest with HEAD requests; seed the new digest, then propose it")
	srv.RunWatch(ctx)
	st, err := fetchStatus(ctx, url)
	if err != nil {
		return err
	}
	if st.Watch.Error != "" {
		return fmt.Errorf("watch pass: %s", st.Watch.Error)
	}
	p.done("new digest %s", short(st.Tracked))
	p.line("first a reconcile gives the store %s, so that the MR pipelines find it:", b.Version)
	proposal, err := p.follow(ctx, url, startup.ID)
	if err != nil {
		return err
	}
	if proposal.Result != string(reconciler.ResultOK) {
		return fmt.Errorf("reconcile %s ended %s: %s", proposal.ID, proposal.Result, proposal.Error)
	}
	if proposal.Mode == "live" {
		during, err := standin.ReadStatus(statusFile)
		if err != nil {
			return err
		}
		p.done("seeded %s live: runner downtime %.2fs, drain %.2fs, queue stall %.2fs; pid %d still serving job #1 (%d running, %d aborted); config.toml keeps what the default branches pin (%s)",
			strings.Join(shortAll(proposal.Seeded), ", "), proposal.DowntimeSeconds, proposal.DrainSeconds, proposal.StallSeconds,
			during.PID, during.JobsRunning, during.JobsAborted, short(digestOf(proposal.Image)))
	} else {
		p.done("seeded %s; runner downtime %.2fs; config.toml keeps what the default branches pin (%s)",
			strings.Join(shortAll(proposal.Seeded), ", "), proposal.DowntimeSeconds, short(digestOf(proposal.Image)))
	}

	var mrIID int64
	for _, proj := range env.Projects {
		mrs := env.GitLab.MergeRequests(proj)
		if len(mrs) == 0 {
			return fmt.Errorf("the bot opened no merge request in %s", proj)
		}
		mr := mrs[len(mrs)-1]
		p.line("MR !%d in %s: %q", mr.IID, proj, mr.Title)
		if proj == env.Projects[0] {
			mrIID = mr.IID
		}
	}

	p.step("alice merges the MR in %s; GitLab sends the merge webhook", env.Projects[0])
	if _, err := env.GitLab.Merge(env.Projects[0], mrIID, "alice"); err != nil {
		return err
	}
	rep, err := p.follow(ctx, url, proposal.ID)
	if err != nil {
		return err
	}
	if rep.Result != string(reconciler.ResultOK) {
		return fmt.Errorf("reconcile %s ended %s: %s", rep.ID, rep.Result, rep.Error)
	}
	p.done("config.toml image = %s (gitlab-runner re-reads it: no restart)", rep.Image)

	// The merge also pushed to the default branch: GitLab's push webhook
	// may queue one more (no-op) pass. Wait for the daemon to be idle.
	final, err := waitIdle(ctx, url)
	if err != nil {
		return err
	}
	// The runner picks the new image up from config.toml by itself.
	after, err := standin.ReadStatus(statusFile)
	for deadline := time.Now().Add(10 * time.Second); err == nil && after.Image != rep.Image && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		after, err = standin.ReadStatus(statusFile)
	}
	if err != nil {
		return err
	}
	p.line("runner pid %d → %d, image %s", before.PID, after.PID, after.Image)
	if o.live {
		p.line("job #1 ran through the whole upgrade: %d running, %d done, %d aborted", after.JobsRunning, after.JobsDone, after.JobsAborted)
	}
	p.line("the live store now holds %d paths: all of %s, all of %s and the cached build %s; nothing was removed",
		countPaths(env.StoreDir()), a.Version, b.Version, filepath.Base(cached))
	p.line("done in %.1fs. Look around: %s/status  %s/metrics", time.Since(p.start).Seconds(), url, url)
	if o.done != nil {
		o.done(&demoCycle{env: env, cfg: cfg, url: url, status: final, proposal: proposal, merged: rep, cached: cached, runnerBefore: before, runnerAfter: after})
	}
	if o.exit {
		return nil
	}
	p.line("serving until Ctrl-C (work dir %s, log %s)", o.dir, logFile.Name())
	<-ctx.Done()
	return nil
}

// demoConfig is the daemon's configuration for the demo's world.
func demoConfig(env *demo.Env, o demoOptions) (config.Config, error) {
	cfg := config.Default()
	cfg.Server.Listen = o.listen
	cfg.Server.StateDir = env.StateDir()
	cfg.Server.WebhookSecret = "demo-webhook-secret"
	cfg.Server.ResyncToken = "demo-resync-token"
	cfg.GitLab.URL = env.GitLabURL
	cfg.GitLab.Token = demo.Token
	cfg.Watch.Image = env.Image()
	cfg.Watch.Platforms = []string{"linux/amd64", "linux/arm64"}
	cfg.Watch.Settle = 0
	cfg.Watch.Schedule = "@every 1h"
	for _, p := range env.Projects {
		cfg.Projects = append(cfg.Projects, config.Project{Path: p, Files: []string{".gitlab-ci.yml"}})
	}
	cfg.Store.Dir = env.StoreDir()
	cfg.Store.LockTimeout = config.Duration(time.Minute)
	jobs := "-job-duration=400ms"
	if o.live {
		cfg.Store.Merge = "live"
		jobs = "-job-duration=10m"
	}
	status := filepath.Join(env.RunnerDir(), "status.json") // as demoRun reads it
	cfg.Runner.Control = "command"
	cfg.Runner.ConfigFile = filepath.Join(env.RunnerDir(), "config.toml")
	cfg.Runner.StartCommand = append(append([]string(nil), o.runner...), "start",
		"-config", cfg.Runner.ConfigFile, "-status", status, "-store", env.StoreDir(),
		"-jobs=-1", jobs, "-reload-interval=1s", fmt.Sprintf("-parent=%d", os.Getpid()), "-log", filepath.Join(env.RunnerDir(), "runner.log"))
	cfg.Runner.StopCommand = append(append([]string(nil), o.runner...), "stop", "-status", status)
	cfg.Runner.ID = int(env.RunnerID)
	cfg.Runner.Name = "nix runner"
	cfg.Runner.PinImage = true
	cfg.Runner.DrainTimeout = config.Duration(time.Minute)
	cfg.Reconcile.Schedule = "@every 1h"
	// One emulated GitLab on this machine: a short pace keeps the demo brisk.
	cfg.Reconcile.MinInterval = config.Duration(time.Second)
	return cfg, cfg.Validate()
}

func demoRunnerOptions(cfg config.Config) runner.Options {
	return runner.Options{
		Control: cfg.Runner.Control, StartCommand: cfg.Runner.StartCommand, StopCommand: cfg.Runner.StopCommand,
		ConfigFile: cfg.Runner.ConfigFile, DrainTimeout: cfg.Runner.DrainTimeout.D(),
	}
}

// writeRunnerConfig writes the stand-in runner's config.toml as a team
// following the manual recipe would have it.
func writeRunnerConfig(path string, env *demo.Env, image string) error {
	store := env.StoreDir()
	text := fmt.Sprintf(`concurrent = 1
check_interval = 0

[[runners]]
  name = "nix runner"
  url = %q
  executor = "docker"
  [runners.docker]
    image = %q
    privileged = false
    volumes = ["/cache", "%s/nix/store:/nix/store:rw", "%s/nix/var/nix/db:/nix/var/nix/db:rw", "%s/nix/var/nix/gcroots/hydrafy:/nix/var/nix/gcroots/hydrafy:ro"]
`, env.GitLabURL, image, store, store, store)
	return os.WriteFile(path, []byte(text), 0o644)
}
