package nixtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

// StandinMain makes this test binary the stand-in gitlab-runner when it
// was started with "-standin" first (gitlab-runner cannot be built here;
// the stand-in follows its signal contract): it runs standin.Main and
// exits. TestMain calls it first.
func StandinMain() {
	if len(os.Args) > 1 && os.Args[1] == "-standin" {
		os.Exit(standin.Main(os.Args[2:], os.Stderr))
	}
}

// Standin is one stand-in runner's files: its status, the live store its
// jobs use, its config.toml and its log.
type Standin struct {
	Dir, Status, Store, Config, Log string
}

// RunnerConfig is the config.toml of a runner with one docker runner.
const RunnerConfig = "concurrent = 1\n\n[[runners]]\n  name = \"nix\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"nixos/nix:latest\"\n"

// NewStandin lays out a stand-in runner's files in dir (a fresh temp dir
// when empty) with jobs on store (DIR/store when empty), and makes sure no
// detached stand-in outlives the test. It writes no config.toml: see
// WriteConfig.
func NewStandin(t testing.TB, dir, store string) *Standin {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if store == "" {
		store = filepath.Join(dir, "store")
	}
	s := &Standin{Dir: dir, Status: filepath.Join(dir, "standin.json"), Store: store,
		Config: filepath.Join(dir, "config.toml"), Log: filepath.Join(dir, "standin.log")}
	t.Cleanup(func() {
		if st, err := standin.ReadStatus(s.Status); err == nil && standin.Alive(st.PID) {
			syscall.Kill(st.PID, syscall.SIGKILL)
		}
	})
	return s
}

// WriteConfig writes text (RunnerConfig when empty) as the runner's
// config.toml; StartArgs passes it from then on.
func (s *Standin) WriteConfig(t testing.TB, text string) {
	t.Helper()
	if text == "" {
		text = RunnerConfig
	}
	if err := os.WriteFile(s.Config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// StartArgs is the command line that starts a detached stand-in (what
// the command runner control runs), with flags added.
func (s *Standin) StartArgs(flags ...string) []string {
	args := []string{os.Args[0], "-standin", "start", "-status", s.Status, "-store", s.Store}
	if _, err := os.Stat(s.Config); err == nil {
		args = append(args, "-config", s.Config)
	}
	return append(append(args, "-log", s.Log), flags...)
}

// StopArgs is the command line that stops the detached stand-in.
func (s *Standin) StopArgs() []string {
	return []string{os.Args[0], "-standin", "stop", "-status", s.Status}
}

// Start starts a detached stand-in with flags and returns its status.
func (s *Standin) Start(t testing.TB, flags ...string) standin.Status {
	t.Helper()
	args := s.StartArgs(flags...)
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("starting the stand-in: %v: %s", err, out)
	}
	return s.ReadStatus(t)
}

// ReadStatus returns the stand-in's status; it fails the test when there
// is none.
func (s *Standin) ReadStatus(t testing.TB) standin.Status {
	t.Helper()
	st, err := standin.ReadStatus(s.Status)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Wait waits until the stand-in's status satisfies cond and returns it;
// after 15s it fails the test with the last status and the log.
func (s *Standin) Wait(t testing.TB, what string, cond func(standin.Status) bool) standin.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := standin.ReadStatus(s.Status)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.Log)
			t.Fatalf("stand-in never reached %s: last status %+v (%v); log:\n%s", what, st, err, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BigLockFree reports whether an exclusive flock on store's big-lock can
// be taken now: the proof that no job (and no Nix process) holds the store.
func BigLockFree(t testing.TB, store string) bool {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(store, "nix/var/nix/db"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Lockable(t, filepath.Join(store, standin.BigLock))
}

// Lockable reports whether an exclusive flock on the file at path can be
// taken now (it creates the file).
func Lockable(t testing.TB, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return true
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return false
}
