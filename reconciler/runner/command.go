package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// command controls the runner with user-given stop and start commands. It
// runs them without a shell; write ["sh", "-c", "..."] for one.
type command struct {
	stopCmd, startCmd []string
	metricsURL        string
	log               *slog.Logger

	mu      sync.Mutex
	stopped bool // the last command run was a successful stop
}

func (c *command) preflight(ctx context.Context) error {
	for _, argv := range [][]string{c.stopCmd, c.startCmd} {
		if _, err := exec.LookPath(argv[0]); err != nil {
			return fmt.Errorf("runner command %q: %w", argv[0], err)
		}
	}
	return nil
}

func (c *command) stop(ctx context.Context) error {
	if err := c.run(ctx, c.stopCmd); err != nil {
		return err
	}
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	return nil
}

func (c *command) start(ctx context.Context) error {
	if err := c.run(ctx, c.startCmd); err != nil {
		return err
	}
	c.mu.Lock()
	c.stopped = false
	c.mu.Unlock()
	return nil
}

// running asks the runner's metrics endpoint when there is one; otherwise
// it can only tell what the last command did.
func (c *command) running(ctx context.Context) (bool, error) {
	if c.metricsURL != "" {
		_, err := scrapeJobs(ctx, c.metricsURL)
		return err == nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.stopped, nil
}

// run runs argv and waits until it exits. Its output goes to the log; a
// failure names the command's last stderr line. Output is collected in
// files, not pipes: a start command may leave the runner behind holding
// them, and waiting for that would never end.
func (c *command) run(ctx context.Context, argv []string) error {
	stdout, err := os.CreateTemp("", "hydrafy-runner-cmd-*")
	if err != nil {
		return err
	}
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	stderr, err := os.CreateTemp("", "hydrafy-runner-cmd-*")
	if err != nil {
		return err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = childEnv(os.Environ())
	runErr := cmd.Run()
	out, _ := os.ReadFile(stdout.Name())
	errOut, _ := os.ReadFile(stderr.Name())
	c.log.Debug("runner command", "argv", argv, "stdout", string(out), "stderr", string(errOut), "error", runErr)
	if runErr != nil {
		return fmt.Errorf("running %s: %w%s", strings.Join(argv, " "), runErr, lastLine(string(errOut)))
	}
	return nil
}

// childEnv is env without hydrafy's secrets: a start command may leave
// gitlab-runner behind, whose shell jobs would inherit them.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HYDRAFY_") {
			out = append(out, kv)
		}
	}
	return out
}
