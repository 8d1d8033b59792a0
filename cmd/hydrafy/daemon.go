package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/bot"
	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/runner"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/server"
)

// The runner package's Runner is what the reconciler drives.
var _ reconciler.Runner = (*runner.Runner)(nil)

// newStager returns the store's stager (stager.go): it pulls, extracts and
// verifies an image's store inside cfg.Store.Dir, and commits it into the
// live store under the big-lock.
func newStager(cfg config.Config, log *slog.Logger) (reconciler.Stager, error) {
	live, err := filepath.Abs(cfg.Store.Dir)
	if err != nil {
		return nil, fmt.Errorf("store dir: %w", err)
	}
	return newStagerFor(live, seed.Options{Image: image.Options{Platform: cfg.Store.Platform, Mirrors: cfg.Store.Mirrors}, LockTimeout: cfg.Store.LockTimeout.D()}, log), nil
}

// newCollector returns the store's garbage collector with the [gc] policy.
func newCollector(cfg config.Config, storeDir string, log *slog.Logger) *storeCollector {
	return &storeCollector{dir: storeDir, gc: cfg.GC, lockTimeout: cfg.Store.LockTimeout.D(), log: log}
}

// daemon is what `hydrafy serve` and `hydrafy reconcile` are built from:
// the reconciler of this host's store and runner (nil on a bot-only host)
// and the bot's watch pass (nil where the bot is off).
type daemon struct {
	gl      *gitlab.Client
	rec     *reconciler.Reconciler
	metrics *server.Metrics
	watcher server.Watcher
	checks  []server.Check
}

// newDaemon builds the real parts of cfg's roles; stager is the store's
// (unused on a bot-only host).
func newDaemon(cfg config.Config, log *slog.Logger, stager reconciler.Stager) (*daemon, error) {
	metrics := server.NewMetrics()
	metrics.SetBuildInfo(versionString())
	gl, err := newGitLabClient(cfg, metrics.ObserveGitLab)
	if err != nil {
		return nil, err
	}
	d := &daemon{
		gl:      gl,
		metrics: metrics,
		checks: []server.Check{{Name: "gitlab", Check: func(ctx context.Context) error {
			_, _, err := gl.Users.CurrentUser(gitlab.WithContext(ctx))
			return err
		}}},
	}
	if cfg.Reconcile.Enabled {
		storeDir, err := filepath.Abs(cfg.Store.Dir)
		if err != nil {
			return nil, fmt.Errorf("store dir: %w", err)
		}
		if d.rec, err = newReconciler(cfg, storeDir, log, gl, stager, d.metrics); err != nil {
			return nil, err
		}
		d.checks = append(d.checks, server.DirCheck(storeDir))
	}
	if cfg.Bot.Enabled {
		b, err := bot.New(cfg, log, bot.Options{GitLab: gl})
		if err != nil {
			d.Close() // releases the state dir's lock
			return nil, err
		}
		w := botWatcher{bot: b}
		if d.rec != nil {
			w.trigger, w.seeder = d.rec.Trigger, reconcilerSeeder{d.rec}
		}
		d.watcher = w
	}
	return d, nil
}

// Close releases the reconciler's state dir.
func (d *daemon) Close() {
	if d.rec != nil {
		d.rec.Close()
	}
}

// newReconciler builds the reconciler of cfg's store and runner.
func newReconciler(cfg config.Config, storeDir string, log *slog.Logger, gl *gitlab.Client, stager reconciler.Stager, metrics *server.Metrics) (*reconciler.Reconciler, error) {
	run, err := runner.New(runner.Options{
		Control:      cfg.Runner.Control,
		Unit:         cfg.Runner.Unit,
		Container:    cfg.Runner.Container,
		DockerHost:   cfg.Runner.DockerHost,
		StopCommand:  cfg.Runner.StopCommand,
		StartCommand: cfg.Runner.StartCommand,
		ConfigFile:   cfg.Runner.ConfigFile,
		Name:         cfg.Runner.Name,
		ID:           cfg.Runner.ID,
		Token:        cfg.Runner.Token,
		DrainTimeout: cfg.Runner.DrainTimeout.D(),
		PinImage:     cfg.Runner.PinImage,
		MetricsURL:   cfg.Runner.MetricsURL,
	}, gl, log)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	projects := projectsOf(cfg)
	metrics.WatchStore(storeDir)
	return reconciler.New(reconciler.Options{
		Image:          cfg.Watch.Image,
		Projects:       projects,
		ProposalBranch: propose.BranchName(cfg.Propose.BranchPrefix, cfg.Watch.Image),
		DefaultImage:   cfg.Runner.DefaultImage,
		StoreDir:       storeDir,
		LiveMerge:      cfg.Store.Merge == "live",
		PinImage:       cfg.Runner.PinImage,
		StateDir:       cfg.Server.StateDir,
		Repo:           reconciler.GitLabRepo{Client: gl},
		Find:           reconciler.PinFind,
		Stager:         stager,
		Runner:         run,
		MinInterval:    cfg.Reconcile.MinInterval.D(),
		Collector:      newCollector(cfg, storeDir, log),
		OnReport:       metrics.ObserveReport,
	}, log)
}
