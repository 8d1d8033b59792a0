package runner

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

// TestMain lets the test binary be the stand-in runner: started with
// "-standin" as its first argument it runs standin.Main instead of the
// tests. gitlab-runner cannot be built here; the stand-in follows its
// signal contract.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-standin" {
		os.Exit(standin.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// standinFiles are the paths one stand-in runner uses.
type standinFiles struct {
	dir, status, store, config, log string
}

func newStandinFiles(t *testing.T) standinFiles {
	dir := t.TempDir()
	f := standinFiles{
		dir:    dir,
		status: filepath.Join(dir, "status.json"),
		store:  filepath.Join(dir, "store"),
		config: filepath.Join(dir, "config.toml"),
		log:    filepath.Join(dir, "standin.log"),
	}
	t.Cleanup(func() {
		// Never leave a detached stand-in behind.
		if s, err := standin.ReadStatus(f.status); err == nil && standin.Alive(s.PID) {
			syscall.Kill(s.PID, syscall.SIGKILL)
		}
	})
	return f
}

// startArgs is the command line that starts a detached stand-in.
func (f standinFiles) startArgs(flags ...string) []string {
	return append([]string{os.Args[0], "-standin", "start", "-status", f.status, "-store", f.store, "-log", f.log}, flags...)
}

func (f standinFiles) stopArgs() []string {
	return []string{os.Args[0], "-standin", "stop", "-status", f.status}
}

func (f standinFiles) wait(t *testing.T, what string, cond func(standin.Status) bool) standin.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := standin.ReadStatus(f.status)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(f.log)
			t.Fatalf("stand-in never reached %s: last status %+v (%v); log:\n%s", what, st, err, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f standinFiles) readStatus(t *testing.T) standin.Status {
	t.Helper()
	st, err := standin.ReadStatus(f.status)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// bigLockFree reports whether an exclusive flock on the store's big-lock
// can be taken now: the proof that no job holds the store.
func bigLockFree(t *testing.T, store string) bool {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(store, "nix/var/nix/db"), 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := os.OpenFile(filepath.Join(store, standin.BigLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	err = syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return true
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return false
}

const botToken = "glpat-hydrafy"

// newGitLab starts the GitLab emulator and returns it with a client of the
// real client library.
func newGitLab(t *testing.T) (*gitlabemu.Server, *gitlab.Client) {
	t.Helper()
	emu := gitlabemu.New(gitlabemu.Options{})
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { ts.Close(); emu.Close() })
	emu.AddToken(botToken, "hydrafy-bot")
	gl, err := gitlab.NewClient(botToken, gitlab.WithBaseURL(ts.URL+"/api/v4"),
		gitlab.WithCustomRetryWaitMinMax(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return emu, gl
}

// logBuffer is a slog logger whose output a test can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
