package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

func TestCommandControlDrainsTheStandin(t *testing.T) {
	f := newStandinFiles(t)
	r := newRunner(t, Options{
		Control:      "command",
		StopCommand:  f.StopArgs(),
		StartCommand: f.StartArgs("-jobs=-1", "-job-duration=300ms"),
	}, nil, nil)
	ctx := testContext(t)
	if err := r.ctl.preflight(ctx); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := r.Start(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if up, err := r.Running(ctx); err != nil || !up {
			t.Fatalf("round %d: Running = %v, %v after Start", round, up, err)
		}
		before := f.Wait(t, "a running job", func(s standin.Status) bool { return s.JobsRunning == 1 })
		if bigLockFree(t, f.Store) {
			t.Fatal("big-lock free while a job runs")
		}
		if err := r.Stop(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// Stop returned: the process has exited after finishing its job.
		after := f.ReadStatus(t)
		if standin.Alive(after.PID) {
			t.Errorf("round %d: stand-in %d still alive after Stop", round, after.PID)
		}
		if after.State != standin.StateExited || after.JobsAborted != 0 || after.JobsDone <= before.JobsDone {
			t.Errorf("round %d: status %+v, want exited with the running job done", round, after)
		}
		if !bigLockFree(t, f.Store) {
			t.Errorf("round %d: big-lock held after Stop", round)
		}
		if up, err := r.Running(ctx); err != nil || up {
			t.Errorf("round %d: Running = %v, %v after Stop", round, up, err)
		}
	}
}

func TestCommandControlFailures(t *testing.T) {
	tests := []struct {
		name    string
		stop    []string
		wantErr []string
	}{
		{"non-zero exit names the last stderr line", []string{"sh", "-c", "echo first >&2; echo 'runner not found' >&2; exit 3"}, []string{"exit status 3", "runner not found"}},
		{"missing binary", []string{"/nonexistent/stop-runner"}, []string{"/nonexistent/stop-runner"}},
		{"no shell unless asked", []string{"exit 0"}, []string{"exit 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t, Options{Control: "command", StopCommand: tt.stop, StartCommand: []string{"true"}}, nil, nil)
			err := r.Stop(testContext(t))
			if err == nil {
				t.Fatal("Stop succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if up, _ := r.Running(testContext(t)); !up {
				t.Error("a failed stop counts as stopped")
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no control", Options{}, "not set"},
		{"unknown control", Options{Control: "k8s"}, `unknown runner control "k8s"`},
		{"docker without container", Options{Control: "docker"}, "container name"},
		{"command without start", Options{Control: "command", StopCommand: []string{"true"}}, "stop and a start command"},
		{"bad docker host", Options{Control: "docker", Container: "r", DockerHost: "ssh://host"}, "unix:///path"},
		{"negative drain timeout", Options{Control: "none", DrainTimeout: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCommandHidesSecrets: the runner's start command (and a gitlab-runner
// it leaves behind, whose shell jobs inherit its environment) never sees
// hydrafy's secrets.
func TestCommandHidesSecrets(t *testing.T) {
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "glpat-secret-value")
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", "hook-secret-value")
	t.Setenv("KEEP_ME", "visible")
	out := filepath.Join(t.TempDir(), "env")
	r := newRunner(t, Options{Control: "command", StopCommand: []string{"true"}, StartCommand: []string{"sh", "-c", "env > " + out}}, nil, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "secret-value") || strings.Contains(string(env), "HYDRAFY_") {
		t.Errorf("the start command saw hydrafy's secrets:\n%s", env)
	}
	if !strings.Contains(string(env), "KEEP_ME=visible") {
		t.Errorf("the start command lost the rest of the environment:\n%s", env)
	}
}
