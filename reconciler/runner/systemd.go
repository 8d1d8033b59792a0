package runner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// DropIn is where the shipped systemd drop-in belongs and what it holds.
const DropIn = "deploy/gitlab-runner-drain.conf"

// systemd controls a runner run by a systemd unit.
type systemd struct {
	unit         string
	systemctl    string
	drainTimeout time.Duration
	log          *slog.Logger
}

// unitState is what `systemctl show` reports about the unit.
type unitState struct {
	killSignal  int
	timeoutStop time.Duration // 0 = infinity
	active      string
}

func (s *systemd) show(ctx context.Context) (unitState, error) {
	out, err := s.run(ctx, "show", "-p", "KillSignal,TimeoutStopUSec,ActiveState", s.unit)
	if err != nil {
		return unitState{}, err
	}
	var u unitState
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "KillSignal":
			if u.killSignal, err = strconv.Atoi(v); err != nil {
				return u, fmt.Errorf("reading KillSignal of %s: %q is not a signal number", s.unit, v)
			}
		case "TimeoutStopUSec":
			if u.timeoutStop, err = parseTimespan(v); err != nil {
				return u, fmt.Errorf("reading TimeoutStopUSec of %s: %w", s.unit, err)
			}
		case "ActiveState":
			u.active = v
		}
	}
	if u.active == "" || u.killSignal == 0 {
		return u, fmt.Errorf("systemctl show %s: no KillSignal or ActiveState in %q", s.unit, out)
	}
	return u, nil
}

// sigquit is SIGQUIT's number, as systemctl show reports KillSignal.
const sigquit = 3

func (s *systemd) preflight(ctx context.Context) error {
	u, err := s.show(ctx)
	if err != nil {
		return err
	}
	if u.killSignal != sigquit {
		return fmt.Errorf("unit %s stops the runner with signal %d, which aborts running jobs; install %s as /etc/systemd/system/%s.d/gitlab-runner-drain.conf (KillSignal=SIGQUIT, TimeoutStopSec=3h), then run systemctl daemon-reload",
			s.unit, u.killSignal, DropIn, s.unit)
	}
	if u.timeoutStop > 0 && s.drainTimeout > u.timeoutStop {
		s.log.Warn("the unit's TimeoutStopSec is shorter than the drain timeout: systemd kills jobs that outlast it",
			"unit", s.unit, "timeout_stop", u.timeoutStop, "drain_timeout", s.drainTimeout)
	}
	return nil
}

func (s *systemd) stop(ctx context.Context) error {
	if err := s.preflight(ctx); err != nil {
		return err
	}
	// systemctl stop returns once the unit's processes have exited.
	if _, err := s.run(ctx, "stop", s.unit); err != nil {
		return err
	}
	u, err := s.show(ctx)
	if err != nil {
		return err
	}
	if u.active == "active" || u.active == "deactivating" {
		return fmt.Errorf("unit %s is still %s after systemctl stop", s.unit, u.active)
	}
	return nil
}

func (s *systemd) start(ctx context.Context) error {
	_, err := s.run(ctx, "start", s.unit)
	return err
}

func (s *systemd) running(ctx context.Context) (bool, error) {
	u, err := s.show(ctx)
	if err != nil {
		return false, err
	}
	return u.active == "active", nil
}

func (s *systemd) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.systemctl, args...)
	cmd.Env = childEnv(os.Environ())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w%s", s.systemctl, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	return string(out), nil
}

// parseTimespan reads systemd's time span format as `systemctl show` prints
// it ("3h", "1min 30s", "infinity"); 0 means infinity.
func parseTimespan(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "infinity" || v == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		d      time.Duration
	}{{"usec", time.Microsecond}, {"us", time.Microsecond}, {"msec", time.Millisecond}, {"ms", time.Millisecond},
		{"min", time.Minute}, {"sec", time.Second}, {"s", time.Second}, {"h", time.Hour}, {"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}}
	var total time.Duration
	for _, f := range strings.Fields(v) {
		ok := false
		for _, u := range units {
			num, found := strings.CutSuffix(f, u.suffix)
			if !found {
				continue
			}
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				continue
			}
			total += time.Duration(n * float64(u.d))
			ok = true
			break
		}
		if !ok {
			return 0, fmt.Errorf("unknown time span %q", v)
		}
	}
	return total, nil
}

// lastLine formats the last non-empty line of a command's stderr for an
// error message.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}
