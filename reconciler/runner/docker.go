package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// docker controls a runner that runs in a container, through the Docker
// Engine API.
type docker struct {
	base      string // http://docker or http://HOST:PORT
	client    *http.Client
	container string
	log       *slog.Logger
}

func newDocker(host, container string, log *slog.Logger) (*docker, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("parsing docker host %q: %w", host, err)
	}
	d := &docker{container: container, log: log}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		dialer := &net.Dialer{}
		d.base = "http://docker"
		d.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", sock)
			},
		}}
	case "tcp", "http":
		d.base = "http://" + u.Host
		d.client = &http.Client{}
	default:
		return nil, fmt.Errorf("docker host %q: want unix:///path or tcp://host:port", host)
	}
	return d, nil
}

// inspect is the part of GET /containers/{name}/json the control reads.
type inspect struct {
	State struct {
		Running  bool   `json:"Running"`
		Status   string `json:"Status"`
		ExitCode int    `json:"ExitCode"`
	} `json:"State"`
	Config struct {
		StopSignal string `json:"StopSignal"`
	} `json:"Config"`
	HostConfig struct {
		RestartPolicy struct {
			Name string `json:"Name"`
		} `json:"RestartPolicy"`
	} `json:"HostConfig"`
}

func (d *docker) inspect(ctx context.Context) (inspect, error) {
	var in inspect
	err := d.call(ctx, http.MethodGet, "json", nil, &in, http.StatusOK)
	return in, err
}

// preflight checks that the container exists and that Docker will not
// restart it when it exits on SIGQUIT: Docker keeps a restart policy in
// force after a kill with any signal but the container's stop signal.
func (d *docker) preflight(ctx context.Context) error {
	in, err := d.inspect(ctx)
	if err != nil {
		return err
	}
	policy := in.HostConfig.RestartPolicy.Name
	restarts := policy == "always" || policy == "unless-stopped" || policy == "on-failure"
	if restarts && !isSIGQUIT(in.Config.StopSignal) {
		return fmt.Errorf("container %s has restart policy %q and stop signal %q: Docker would restart it after a SIGQUIT drain; recreate it with --stop-signal SIGQUIT",
			d.container, policy, in.Config.StopSignal)
	}
	return nil
}

func isSIGQUIT(s string) bool {
	s = strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	return s == "QUIT" || s == fmt.Sprint(int(syscall.SIGQUIT))
}

// stop sends SIGQUIT to the container and waits until it has exited.
func (d *docker) stop(ctx context.Context) error {
	in, err := d.inspect(ctx)
	if err != nil {
		return err
	}
	if !in.State.Running {
		d.log.Info("runner container not running", "container", d.container, "status", in.State.Status)
		return nil
	}
	if err := d.preflight(ctx); err != nil {
		return err
	}
	// 409: it stopped between the inspect and the kill.
	if err := d.call(ctx, http.MethodPost, "kill?signal=SIGQUIT", nil, nil, http.StatusNoContent, http.StatusConflict); err != nil {
		return err
	}
	var w struct {
		StatusCode int `json:"StatusCode"`
		Error      *struct {
			Message string `json:"Message"`
		} `json:"Error"`
	}
	if err := d.call(ctx, http.MethodPost, "wait?condition=not-running", nil, &w, http.StatusOK); err != nil {
		return err
	}
	if w.Error != nil && w.Error.Message != "" {
		return fmt.Errorf("waiting for container %s: %s", d.container, w.Error.Message)
	}
	if w.StatusCode != 0 {
		d.log.Warn("runner container exited with a non-zero status after SIGQUIT", "container", d.container, "status", w.StatusCode)
	}
	if in, err = d.inspect(ctx); err != nil {
		return err
	}
	if in.State.Running {
		return fmt.Errorf("container %s runs again after exiting (restart policy %q)", d.container, in.HostConfig.RestartPolicy.Name)
	}
	return nil
}

func (d *docker) start(ctx context.Context) error {
	// 304: already running.
	return d.call(ctx, http.MethodPost, "start", nil, nil, http.StatusNoContent, http.StatusNotModified)
}

func (d *docker) running(ctx context.Context) (bool, error) {
	in, err := d.inspect(ctx)
	if err != nil {
		return false, err
	}
	return in.State.Running, nil
}

// call does one Engine API request on the container; out, when not nil,
// receives the JSON answer.
func (d *docker) call(ctx context.Context, method, op string, body io.Reader, out any, ok ...int) error {
	u := d.base + "/containers/" + url.PathEscape(d.container) + "/" + op
	what := method + " /containers/" + d.container + "/" + op
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("docker %s: %w", what, err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s: %w", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("docker %s: %w", what, err)
	}
	good := false
	for _, code := range ok {
		good = good || resp.StatusCode == code
	}
	if !good {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("docker %s: %s: %s", what, resp.Status, e.Message)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("docker %s: decoding answer: %w", what, err)
		}
	}
	return nil
}
