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
	ConfigFile   string // the runner's config.toml
	Name         string // [[runners]] name to edit; empty = all docker runners
	ID           int    // runner id; 0 = resolve with POST /runners/verify using Token
	Token        string // runner authentication token (secret: never logged)
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

// control stops and starts the runner process; one implementation per
// Options.Control.
type control interface {
	preflight(ctx context.Context) error
	stop(ctx context.Context) error
	start(ctx context.Context) error
	running(ctx context.Context) (bool, error)
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

func newControl(o *Options, log *slog.Logger) (control, error) {
	switch o.Control {
	case "systemd":
		if o.Unit == "" {
			o.Unit = "gitlab-runner.service"
		}
		if o.Systemctl == "" {
			o.Systemctl = "systemctl"
		}
		return &systemd{unit: o.Unit, systemctl: o.Systemctl, drainTimeout: o.DrainTimeout, log: log}, nil
	case "docker":
		if o.Container == "" {
			return nil, errors.New("runner control docker needs a container name")
		}
		if o.DockerHost == "" {
			o.DockerHost = "unix:///var/run/docker.sock"
		}
		return newDocker(o.DockerHost, o.Container, log)
	case "command":
		if len(o.StopCommand) == 0 || len(o.StartCommand) == 0 {
			return nil, errors.New("runner control command needs both a stop and a start command")
		}
		return &command{stopCmd: o.StopCommand, startCmd: o.StartCommand, metricsURL: o.MetricsURL, log: log}, nil
	case "none":
		return none{}, nil
	case "":
		return nil, errors.New("runner control is not set (systemd, docker, command or none)")
	}
	return nil, fmt.Errorf("unknown runner control %q (want systemd, docker, command or none)", o.Control)
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
// the control stops the runner gracefully and the runner id can be known.
func (r *Runner) Preflight(ctx context.Context) error {
	if err := r.ctl.preflight(ctx); err != nil {
		return fmt.Errorf("runner preflight: %w", err)
	}
	if r.id == 0 && r.opts.Token == "" {
		return errors.New("runner preflight: no runner id and no runner token to look it up")
	}
	if r.gl == nil {
		return fmt.Errorf("runner preflight: %w", ErrNoGitLab)
	}
	return nil
}

// none is the control for hosts where hydrafy does not manage the runner
// process.
type none struct{}

func (none) preflight(context.Context) error       { return nil }
func (none) stop(context.Context) error            { return nil }
func (none) start(context.Context) error           { return nil }
func (none) running(context.Context) (bool, error) { return true, nil }
