package standin_test

import (
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary be the stand-in process (nixtest.StandinMain).
func TestMain(m *testing.M) {
	nixtest.StandinMain()
	os.Exit(m.Run())
}

// proc is a stand-in running in the foreground ("run"), its stderr in
// its log.
type proc struct {
	*nixtest.Standin
	cmd *exec.Cmd
}

func startStandin(t *testing.T, config string, flags ...string) *proc {
	t.Helper()
	s := &proc{Standin: nixtest.NewStandin(t, "", "")}
	args := []string{"-standin", "run", "-status", s.Status, "-store", s.Store}
	if config != "" {
		s.WriteConfig(t, config)
		args = append(args, "-config", s.Config)
	}
	log, err := os.Create(s.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	s.cmd = exec.Command(os.Args[0], append(args, flags...)...)
	s.cmd.Stderr = log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	return s
}

func (s *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (s *proc) exitCode(t *testing.T) int {
	t.Helper()
	err := s.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// bigLockFree reports whether an exclusive flock on the big-lock can be taken
// now: the proof that no job holds it.
func bigLockFree(t *testing.T, store string) bool { return nixtest.BigLockFree(t, store) }

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runningJob(s standin.Status) bool { return s.JobsRunning == 1 }

func TestSIGQUITFinishesTheRunningJobAndExits0(t *testing.T) {
	s := startStandin(t, "", "-jobs=-1", "-job-duration=400ms")
	before := s.Wait(t, "a running job", runningJob)
	if bigLockFree(t, s.Store) {
		t.Fatal("big-lock is free while a job runs")
	}
	s.signal(t, syscall.SIGQUIT)
	s.Wait(t, "draining", func(s standin.Status) bool { return s.State == standin.StateDraining })
	if bigLockFree(t, s.Store) {
		t.Fatal("big-lock was released before the running job finished")
	}
	if code := s.exitCode(t); code != 0 {
		log, _ := os.ReadFile(s.Log)
		t.Fatalf("exit status %d after SIGQUIT, want 0; log:\n%s", code, log)
	}
	after, err := standin.ReadStatus(s.Status)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != standin.StateExited || after.JobsDone != before.JobsDone+1 || after.JobsAborted != 0 || after.JobsRunning != 0 {
		t.Errorf("after drain: %+v, want exited with job %d done and none aborted", after, before.JobsDone+1)
	}
	if !bigLockFree(t, s.Store) {
		t.Error("big-lock still held after exit")
	}
}

func TestSIGQUITWhenIdleExitsAtOnce(t *testing.T) {
	s := startStandin(t, "", "-jobs=0")
	s.Wait(t, "running", func(s standin.Status) bool { return s.State == standin.StateRunning })
	s.signal(t, syscall.SIGQUIT)
	if code := s.exitCode(t); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

func TestAbortSignalsAbortJobsAndExit1(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s := startStandin(t, "", "-jobs=-1", "-job-duration=1h", "-concurrent=2")
			s.Wait(t, "two running jobs", func(s standin.Status) bool { return s.JobsRunning == 2 })
			s.signal(t, sig)
			if code := s.exitCode(t); code != 1 {
				t.Fatalf("exit status %d, want 1", code)
			}
			st, err := standin.ReadStatus(s.Status)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != standin.StateAborted || st.JobsAborted != 2 || st.JobsDone != 0 {
				t.Errorf("status %+v, want aborted with 2 jobs aborted", st)
			}
			if !bigLockFree(t, s.Store) {
				t.Error("big-lock still held after exit")
			}
		})
	}
}

func configWithImage(image string) string {
	return fmt.Sprintf(`concurrent = 1
[[runners]]
  name = "nix"
  executor = "docker"
  [runners.docker]
    image = %q
    volumes = ["/srv/nix/store:/nix/store:rw"]
`, image)
}

func TestSIGHUPReloadsConfig(t *testing.T) {
	s := startStandin(t, configWithImage("nixos/nix@sha256:aaa"), "-jobs=0", "-reload-interval=1h")
	s.Wait(t, "first config", func(s standin.Status) bool { return s.Image == "nixos/nix@sha256:aaa" })
	writeFile(t, s.Config, configWithImage("nixos/nix@sha256:bbb"))
	s.signal(t, syscall.SIGHUP)
	st := s.Wait(t, "reloaded config", func(s standin.Status) bool { return s.Reloads == 1 })
	if st.Image != "nixos/nix@sha256:bbb" || st.State != standin.StateRunning {
		t.Errorf("after SIGHUP: %+v, want image bbb and still running", st)
	}
	if len(st.Volumes) != 1 || st.Volumes[0] != "/srv/nix/store:/nix/store:rw" {
		t.Errorf("volumes %q", st.Volumes)
	}
}

func TestConfigChangeIsPickedUpWithoutSignal(t *testing.T) {
	s := startStandin(t, configWithImage("a"), "-jobs=0", "-reload-interval=20ms")
	s.Wait(t, "first config", func(s standin.Status) bool { return s.Image == "a" })
	// A different size and a later mtime, whatever the clock's granularity.
	writeFile(t, s.Config, configWithImage("bb"))
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(s.Config, later, later); err != nil {
		t.Fatal(err)
	}
	st := s.Wait(t, "changed config", func(s standin.Status) bool { return s.Image == "bb" })
	if st.Reloads != 0 || st.ConfigLoads < 2 {
		t.Errorf("status %+v: want a load without a SIGHUP reload", st)
	}
}

func TestMetricsReportRunningJobs(t *testing.T) {
	s := startStandin(t, "listen_address = \"127.0.0.1:0\"\n"+configWithImage("a"), "-jobs=-1", "-job-duration=1h")
	st := s.Wait(t, "a running job", runningJob)
	resp, err := http.Get("http://" + st.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `state="running",system_id="s_standin"} 1`) {
		t.Errorf("metrics do not show one running job:\n%s", b)
	}
}

func TestStartAndStopDetached(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "status.json")
	store := filepath.Join(dir, "store")
	var out strings.Builder
	// standin.Main's start re-executes os.Args up to the subcommand, so hand it a
	// command line that routes back to standin.Main.
	saved := os.Args
	os.Args = []string{saved[0], "-standin", "start", "-status", status, "-store", store, "-jobs=1", "-job-duration=300ms"}
	code := standin.Main(os.Args[2:], &out)
	os.Args = saved
	if code != 0 {
		t.Fatalf("start: exit %d: %s", code, out.String())
	}
	st, err := standin.ReadStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if !standin.Alive(st.PID) {
		t.Fatal("detached stand-in is not running")
	}
	if code := standin.Main([]string{"stop", "-status", status}, &out); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out.String())
	}
	if standin.Alive(st.PID) {
		t.Error("stand-in still alive after stop")
	}
	st, err = standin.ReadStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != standin.StateExited || st.JobsDone != 1 {
		t.Errorf("after stop: %+v, want exited with its job done", st)
	}
}

// TestParentEndAborts: with a parent set, the stand-in aborts its jobs
// and ends once that process is gone (a demo killed with -9).
func TestParentEndAborts(t *testing.T) {
	parent := exec.Command("sleep", "60")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- standin.Run(context.Background(), standin.Options{
			StatusFile: filepath.Join(t.TempDir(), "status.json"), Jobs: -1, JobDuration: time.Minute,
			Parent: parent.Process.Pid, Log: slog.New(slog.DiscardHandler),
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("the stand-in ended while its parent lives: %v", err)
	case <-time.After(time.Second):
	}
	parent.Process.Kill()
	parent.Wait()
	select {
	case err := <-done:
		if !errors.Is(err, standin.ErrAborted) {
			t.Fatalf("after its parent ended: %v, want standin.ErrAborted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stand-in outlived its parent")
	}
}
