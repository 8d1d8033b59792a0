package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

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
	return newStagerFor(live, seed.Options{Image: image.Options{Platform: cfg.Store.Platform}, LockTimeout: cfg.Store.LockTimeout.D()}, log), nil
}

// daemon is what `hydrafy serve` and `hydrafy reconcile` are built from.
type daemon struct {
	gl      *gitlab.Client
	rec     *reconciler.Reconciler
	metrics *server.Metrics
	watcher server.Watcher
	checks  []server.Check
}

// newDaemon builds the real parts from cfg; stager is the store's.
func newDaemon(cfg config.Config, log *slog.Logger, stager reconciler.Stager) (*daemon, error) {
	gl, err := gitlab.NewClient(cfg.GitLab.Token.Reveal(), gitlab.WithBaseURL(cfg.GitLab.URL),
		gitlab.WithCustomRetryMax(3), gitlab.WithCustomRetryWaitMinMax(500*time.Millisecond, 5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("creating GitLab client: %w", err)
	}
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
	storeDir, err := filepath.Abs(cfg.Store.Dir)
	if err != nil {
		return nil, fmt.Errorf("store dir: %w", err)
	}
	projects := make([]reconciler.Project, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		projects = append(projects, reconciler.Project{Path: p.Path, Files: p.Files})
	}
	metrics := server.NewMetrics()
	rec, err := reconciler.New(reconciler.Options{
		Image:          cfg.Watch.Image,
		Projects:       projects,
		ProposalBranch: propose.BranchName(cfg.Propose.BranchPrefix, cfg.Watch.Image),
		DefaultImage:   cfg.Runner.DefaultImage,
		StoreDir:       storeDir,
		PinImage:       cfg.Runner.PinImage,
		StateDir:       cfg.Server.StateDir,
		Repo:           reconciler.GitLabRepo{Client: gl},
		Find:           reconciler.PinFind,
		Stager:         stager,
		Runner:         run,
		OnReport:       metrics.ObserveReport,
	}, log)
	if err != nil {
		return nil, err
	}
	b, err := bot.New(cfg, log, bot.Options{GitLab: gl})
	if err != nil {
		rec.Close() // releases the state dir's lock
		return nil, fmt.Errorf("watcher: %w", err)
	}
	return &daemon{
		gl:      gl,
		rec:     rec,
		metrics: metrics,
		watcher: botWatcher{bot: b, trigger: rec.Trigger, seeder: rec},
		checks: []server.Check{
			{Name: "gitlab", Check: func(ctx context.Context) error {
				_, _, err := gl.Users.CurrentUser(gitlab.WithContext(ctx))
				return err
			}},
			server.DirCheck(storeDir),
		},
	}, nil
}
