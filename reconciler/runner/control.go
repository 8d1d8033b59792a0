package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// control stops and starts the runner process; one implementation per
// Options.Control.
type control interface {
	preflight(ctx context.Context) error
	stop(ctx context.Context) error
	start(ctx context.Context) error
	running(ctx context.Context) (bool, error)
}

// newControl picks the control named by o.Control and fills in its
// defaults.
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

// none is the control for hosts where hydrafy does not manage the runner
// process.
type none struct{}

func (none) preflight(context.Context) error       { return nil }
func (none) stop(context.Context) error            { return nil }
func (none) start(context.Context) error           { return nil }
func (none) running(context.Context) (bool, error) { return true, nil }
