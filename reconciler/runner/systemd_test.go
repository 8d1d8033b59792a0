package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

// fakeSystemctl writes a systemctl stand-in into a temp dir: systemd cannot
// run here. It records its calls, answers `show` from a state file, and
// stops and starts a real stand-in runner the way systemd does with the
// unit's KillSignal.
func fakeSystemctl(t *testing.T, f standinFiles, killSignal int) (path, calls string) {
	t.Helper()
	path = filepath.Join(f.Dir, "systemctl")
	calls = filepath.Join(f.Dir, "calls")
	state := filepath.Join(f.Dir, "unit.state")
	sig := map[int]string{3: "QUIT", 15: "TERM"}[killSignal]
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %[1]q
case "$1" in
show)
	echo "KillSignal=%[3]d"
	echo "TimeoutStopUSec=3h"
	cat %[2]q
	;;
stop)
	%[4]s -standin stop -status %[5]q -signal %[6]s || exit 1
	echo ActiveState=inactive > %[2]q
	;;
start)
	%[4]s -standin start -status %[5]q -store %[7]q -log %[8]q -jobs=-1 -job-duration=300ms || exit 1
	echo ActiveState=active > %[2]q
	;;
*)
	echo "unknown command $1" >&2; exit 1
	;;
esac
`, calls, state, killSignal, os.Args[0], f.Status, sig, f.Store, f.Log)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("ActiveState=inactive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, calls
}

func readCalls(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

func TestSystemdRefusesUnitThatAbortsJobs(t *testing.T) {
	f := newStandinFiles(t)
	systemctl, calls := fakeSystemctl(t, f, 15)
	r := newRunner(t, Options{Control: "systemd", Systemctl: systemctl}, nil, nil)
	ctx := testContext(t)
	for name, call := range map[string]func() error{
		"Preflight": func() error { return r.ctl.preflight(ctx) },
		"Stop":      func() error { return r.Stop(ctx) },
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s succeeded on a unit with KillSignal=SIGTERM", name)
		}
		for _, want := range []string{"gitlab-runner.service", "signal 15", "deploy/gitlab-runner-drain.conf", "/etc/systemd/system/gitlab-runner.service.d/", "daemon-reload"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error %q does not mention %q", name, err, want)
			}
		}
	}
	for _, c := range readCalls(t, calls) {
		if !strings.HasPrefix(c, "show_") {
			t.Errorf("systemctl %s run on a refused unit", c)
		}
	}
}

func TestSystemdDrainsTheStandin(t *testing.T) {
	f := newStandinFiles(t)
	systemctl, calls := fakeSystemctl(t, f, 3)
	r := newRunner(t, Options{Control: "systemd", Systemctl: systemctl, Unit: "runner.service", DrainTimeout: time.Hour}, nil, nil)
	ctx := testContext(t)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if up, err := r.Running(ctx); err != nil || !up {
		t.Fatalf("Running = %v, %v after Start", up, err)
	}
	before := f.Wait(t, "a running job", func(s standin.Status) bool { return s.JobsRunning == 1 })
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.ReadStatus(t)
	if after.State != standin.StateExited || after.JobsAborted != 0 || after.JobsDone <= before.JobsDone || standin.Alive(after.PID) {
		t.Errorf("after Stop: %+v, want exited with its running job done", after)
	}
	if !bigLockFree(t, f.Store) {
		t.Error("big-lock held after Stop")
	}
	if up, err := r.Running(ctx); err != nil || up {
		t.Errorf("Running = %v, %v after Stop", up, err)
	}
	want := []string{"start_runner.service", "show_-p_KillSignal,TimeoutStopUSec,ActiveState_runner.service",
		"show_-p_KillSignal,TimeoutStopUSec,ActiveState_runner.service", "stop_runner.service"}
	got := readCalls(t, calls)
	if len(got) < 4 || strings.Join(got[:4], " ") != strings.Join(want, " ") {
		t.Errorf("systemctl calls %q, want them to begin with %q", got, want)
	}
}

func TestParseTimespan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"3h", 3 * time.Hour},
		{"1min 30s", 90 * time.Second},
		{"infinity", 0},
		{"1d 2h", 26 * time.Hour},
		{"500ms", 500 * time.Millisecond},
		{"1.5s", 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		got, err := parseTimespan(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseTimespan("soon"); err == nil {
		t.Error("parseTimespan(soon) succeeded")
	}
}
