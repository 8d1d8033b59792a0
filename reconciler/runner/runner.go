// Package runner controls the gitlab-runner on this host for a store update:
// it pauses and unpauses the runner through the GitLab API, waits until it
// runs no jobs, stops and starts it gracefully through systemd, Docker or
// user commands, and edits its config.toml.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gitlab.com/hydrafy/hydrafy/config"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// Options says how to reach and control the runner.
type Options struct {
	Control      string // "systemd", "docker", "command", "none"
	Unit         string // systemd unit, default gitlab-runner.service
	Container    string // docker container name
	DockerHost   string // default unix:///var/run/docker.sock
	StopCommand  []string
	StartCommand []string
	ConfigFile   string        // the runner's config.toml
	Name         string        // [[runners]] name to edit; empty = all docker runners
	ID           int           // runner id; 0 = resolve with POST /runners/verify using Token
	Token        config.Secret // runner authentication token
	DrainTimeout time.Duration
	PinImage     bool
	MetricsURL   string // optional listen_address metrics, e.g. http://127.0.0.1:9252/metrics

	Systemctl    string        // systemctl binary, default "systemctl"
	PollInterval time.Duration // how often WaitIdle looks, default 2 s
}

// LogValue keeps the token out of logs.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("control", o.Control),
		slog.String("config_file", o.ConfigFile),
		slog.Int("id", o.ID),
		slog.Bool("token_set", o.Token != ""),
	)
}

// Runner controls one gitlab-runner process and its GitLab runner record.
type Runner struct {
	opts Options
	gl   *gitlab.Client
	log  *slog.Logger
	ctl  control

	mu sync.Mutex
	id int // resolved runner id; 0 until known
}

// ErrNoGitLab is returned by the API calls of a Runner built without a
// GitLab client.
var ErrNoGitLab = errors.New("no GitLab client configured")

// New checks opts and returns a Runner. gl may be nil when only the process
// control and Configure are used.
func New(opts Options, gl *gitlab.Client, log *slog.Logger) (*Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.DrainTimeout < 0 {
		return nil, fmt.Errorf("runner drain timeout %s is negative", opts.DrainTimeout)
	}
	r := &Runner{opts: opts, gl: gl, log: log.With("runner_control", opts.Control), id: opts.ID}
	ctl, err := newControl(&r.opts, r.log)
	if err != nil {
		return nil, err
	}
	r.ctl = ctl
	return r, nil
}

// Stop stops the runner gracefully through the control (SIGQUIT: running
// jobs finish) and returns once it has exited.
func (r *Runner) Stop(ctx context.Context) error {
	start := time.Now()
	if err := r.ctl.stop(ctx); err != nil {
		return fmt.Errorf("stopping runner: %w", err)
	}
	r.log.Info("runner stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Start starts the runner through the control.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.ctl.start(ctx); err != nil {
		return fmt.Errorf("starting runner: %w", err)
	}
	r.log.Info("runner started")
	return nil
}

// Running reports whether the runner process is up.
func (r *Runner) Running(ctx context.Context) (bool, error) {
	ok, err := r.ctl.running(ctx)
	if err != nil {
		return false, fmt.Errorf("checking whether the runner runs: %w", err)
	}
	return ok, nil
}

// Preflight checks, without changing anything, that a drain is possible:
// the control stops the runner gracefully, the runner id can be known, and
// config.toml (when set) can be edited, so that nothing fails only once the
// runner is down.
func (r *Runner) Preflight(ctx context.Context) error {
	if err := r.ctl.preflight(ctx); err != nil {
		return fmt.Errorf("runner preflight: %w", err)
	}
	if r.opts.ConfigFile != "" {
		if err := r.checkConfig(); err != nil {
			return fmt.Errorf("runner preflight: %w", err)
		}
	}
	if r.id == 0 && r.opts.Token == "" {
		return errors.New("runner preflight: no runner id and no runner token to look it up")
	}
	if r.gl == nil {
		return fmt.Errorf("runner preflight: %w", ErrNoGitLab)
	}
	return nil
}
