package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/server"
)

// runServe is `hydrafy serve --config FILE`: the daemon of the host's roles.
// A reconciler answers GitLab webhooks (unless poll-only) and /resync, runs
// the periodic resync and reconciles the runner host; the bot runs the watch
// pass on its schedule. It runs until SIGINT or SIGTERM, then waits for a
// running reconcile to finish.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "usage: hydrafy serve --config FILE\n\nThe daemon: GitLab webhooks, POST /resync, /status, /metrics, the watch\npass (seed a ready digest, then propose it) and the periodic resync.", stdout, stderr)
	cfgPath := fs.String("config", "", "config `FILE` (required)")
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fs.usageError("--config FILE is required")
	}
	cfg, err := loadConfig(*cfgPath, false)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	for _, w := range cfg.SecretFileWarnings() {
		log.Warn(w)
	}
	if cfg.Server.Webhooks && cfg.Server.WebhookSecret == "" {
		return server.ErrNoSecret
	}
	if cfg.GitLab.Token == "" {
		return errNoToken
	}
	var stager reconciler.Stager
	if cfg.Reconcile.Enabled {
		if stager, err = newStager(cfg, log); err != nil {
			return err
		}
	}
	return serve(ctx, cfg, log, stager, nil)
}

// serve runs the daemon built from cfg with the given stager until ctx
// ends. listening, when set, is told the address it listens on.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stager reconciler.Stager, listening func(addr string)) error {
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listening on server.listen %s: %w", cfg.Server.Listen, err)
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.Server.MetricsListen != "" {
		if mln, err = net.Listen("tcp", cfg.Server.MetricsListen); err != nil {
			return fmt.Errorf("listening on server.metrics_listen %s: %w", cfg.Server.MetricsListen, err)
		}
		defer mln.Close()
	}
	srv, closeDaemon, err := newServer(cfg, log, stager, mln)
	if err != nil {
		return err
	}
	defer closeDaemon()
	if listening != nil {
		listening(ln.Addr().String())
	}
	return srv.Serve(ctx, ln)
}

// newServer builds the daemon's HTTP server and its parts from cfg; the
// returned func releases them once the server has stopped.
// metrics, when not nil, serves /metrics and /status.
func newServer(cfg config.Config, log *slog.Logger, stager reconciler.Stager, metrics net.Listener) (*server.Server, func(), error) {
	if cfg.Server.Webhooks && cfg.Server.WebhookSecret == "" {
		return nil, nil, server.ErrNoSecret
	}
	d, err := newDaemon(cfg, log, stager)
	if err != nil {
		return nil, nil, err
	}
	projects := make([]string, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		projects = append(projects, p.Path)
	}
	opts := server.Options{
		WebhookSecret:   cfg.Server.WebhookSecret,
		PollOnly:        !cfg.Server.Webhooks,
		Role:            cfg.Role(),
		ResyncToken:     cfg.Server.ResyncToken,
		MetricsToken:    cfg.Server.MetricsToken,
		MetricsListener: metrics,
		MaxConnections:  cfg.Server.MaxConnections,
		Projects:        projects,
		Watcher:         d.watcher,
		WatchSchedule:   cfg.Watch.Schedule,
		ResyncSchedule:  cfg.Reconcile.Schedule,
		GCSchedule:      cfg.GC.Schedule,
		Checks:          d.checks,
		Metrics:         d.metrics,
		Log:             log,
	}
	if d.rec != nil {
		// Only then: a nil *Reconciler in the interface would not be nil.
		opts.Reconciler = d.rec
	}
	if !cfg.Bot.Enabled {
		// The bot's host seeds a digest before proposing it; every other
		// host learns of the proposal by the push to its branch.
		opts.ProposalBranch = propose.BranchName(cfg.Propose.BranchPrefix, cfg.Watch.Image)
	}
	srv, err := server.New(opts)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return srv, d.Close, nil
}
