package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// The kill test runs a pass in a child process (this test binary), kills it
// with SIGKILL in the middle of a commit, then runs a pass in this process
// on the same state, runner and store, and checks that it converges. The
// runner and the store are files so that both processes see them.

const killDirEnv = "HYDRAFY_TEST_PASS_DIR"

func TestMain(m *testing.M) {
	if nixtest.Child() == "pass" {
		if err := killHelper(os.Getenv(killDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fileRunner is a runner whose state is files in dir: "up" while running,
// "paused" while paused; every call is appended to "calls".
type fileRunner struct{ dir string }

func (f fileRunner) note(s string) error {
	fh, err := os.OpenFile(filepath.Join(f.dir, "calls"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = fmt.Fprintln(fh, s)
	return err
}

func (f fileRunner) flag(name string, on bool) error {
	p := filepath.Join(f.dir, name)
	if on {
		return os.WriteFile(p, nil, 0o644)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (f fileRunner) Preflight(context.Context) error { return f.note("preflight") }
func (f fileRunner) WaitIdle(context.Context) error  { return f.note("wait-idle") }
func (f fileRunner) Pause(context.Context) error     { f.note("pause"); return f.flag("paused", true) }
func (f fileRunner) Unpause(context.Context) error   { f.note("unpause"); return f.flag("paused", false) }
func (f fileRunner) Stop(context.Context) error      { f.note("stop"); return f.flag("up", false) }
func (f fileRunner) Start(context.Context) error     { f.note("start"); return f.flag("up", true) }

func (f fileRunner) Paused(context.Context) (bool, error) {
	_, err := os.Stat(filepath.Join(f.dir, "paused"))
	return err == nil, nil
}

func (f fileRunner) Running(context.Context) (bool, error) {
	_, err := os.Stat(filepath.Join(f.dir, "up"))
	return err == nil, nil
}

func (f fileRunner) Configure(storeDir, image string) (bool, error) {
	return true, os.WriteFile(filepath.Join(f.dir, "config.toml"), []byte(storeDir+" "+image+"\n"), 0o644)
}

// fileStager commits a digest by writing store/<digest>; it is idempotent
// like the real store's commit. When hang names a digest, its commit
// announces itself in "committing" and never returns.
func fileStager(dir, hang string) *fakeStager {
	return &fakeStager{calls: &calls{}, commit: func(_ context.Context, digest string) (CommitReport, error) {
		if digest == hang {
			if err := os.WriteFile(filepath.Join(dir, "committing"), []byte(digest), 0o644); err != nil {
				return CommitReport{}, err
			}
			select {} // killed here
		}
		if err := os.MkdirAll(filepath.Join(dir, "store"), 0o755); err != nil {
			return CommitReport{}, err
		}
		return CommitReport{PathsAdded: 1}, os.WriteFile(filepath.Join(dir, "store", digest), nil, 0o644)
	}}
}

func killOptions(dir string, stager Stager) Options {
	repo := &fakeRepo{files: map[string]string{
		"group/a:.gitlab-ci.yml": "image: nixos/nix@" + dA + "\n",
		"group/b:.gitlab-ci.yml": "image: nixos/nix@" + dB + "\n",
	}}
	return Options{
		Image:    "nixos/nix",
		Projects: []Project{{Path: "group/a", Files: []string{".gitlab-ci.yml"}}, {Path: "group/b", Files: []string{".gitlab-ci.yml"}}},
		StoreDir: filepath.Join(dir, "store"),
		PinImage: true,
		StateDir: filepath.Join(dir, "state"),
		Repo:     repo,
		Find:     findLines,
		Stager:   stager,
		Runner:   fileRunner{dir},
	}
}

func killHelper(dir string) error {
	rec, err := New(killOptions(dir, fileStager(dir, dB)), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	rec.Once(context.Background(), manual)
	return errors.New("helper pass returned; it should have hung in the commit")
}

func TestKilledMidCommitConverges(t *testing.T) {
	dir := t.TempDir()
	if err := (fileRunner{dir}).flag("up", true); err != nil {
		t.Fatal(err)
	}
	if !nixtest.Kill(t, nixtest.Command("pass", killDirEnv+"="+dir), nixtest.KillPoint{Mark: filepath.Join(dir, "committing")}) {
		t.Fatal("the pass finished; it should have hung in the commit")
	}

	// What the killed process left: A seeded, B not claimed, runner down.
	st, err := loadState(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dA}, digests(st.Seeded)); diff != "" {
		t.Errorf("seeded after the kill (-want +got):\n%s", diff)
	}
	if st.InFlight == nil || !st.InFlight.Stopped || !st.InFlight.Paused {
		t.Errorf("in flight after the kill = %+v, want paused and stopped", st.InFlight)
	}
	run := fileRunner{dir}
	if up, _ := run.Running(context.Background()); up {
		t.Fatal("runner up after the kill; the test did not kill mid-commit")
	}

	// A restarted process converges without help.
	rec, err := New(killOptions(dir, fileStager(dir, "")), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rep := rec.Once(context.Background(), Reason{Kind: KindStartup})
	if rep.Result != ResultOK || !rep.Recovery {
		t.Errorf("restart pass: result %s recovery=%v err %q", rep.Result, rep.Recovery, rep.Error)
	}
	if diff := cmp.Diff([]string{dB}, rep.Seeded); diff != "" {
		t.Errorf("restart pass seeded (-want +got):\n%s", diff)
	}
	st, err = loadState(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dA, dB}, digests(st.Seeded)); diff != "" {
		t.Errorf("seeded after restart (-want +got):\n%s", diff)
	}
	if st.InFlight != nil {
		t.Errorf("in flight after restart: %+v", st.InFlight)
	}
	for _, f := range []string{"up", "store/" + dA, "store/" + dB} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "paused")); err == nil {
		t.Error("runner left paused")
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.toml"))
	if want := "nixos/nix@" + dB; !strings.Contains(string(cfg), want) {
		t.Errorf("config.toml = %q, want it to pin %s", cfg, want)
	}
}
