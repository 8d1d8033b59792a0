package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// buildWorld is a derivation whose output the image holds: the staged
// store is where Nix built it, the live store has only its .drv. Its
// builder waits for the file go in dir, and appends a line to ran there.
type buildWorld struct {
	live, staged, dir, drv, out, config string
}

func newBuildWorld(t *testing.T) buildWorld {
	t.Helper()
	w := buildWorld{dir: t.TempDir()}
	w.config = nixtest.BuildConfig(w.dir)
	expr := filepath.Join(w.dir, "out.nix")
	script := "while [ ! -e " + w.dir + "/go ]; do sleep 0.02; done; echo run >> " + w.dir + "/ran; echo built > $out"
	if err := os.WriteFile(expr, []byte(`derivation { name = "built-by-a-job"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "`+script+`"]; }`), 0o644); err != nil {
		t.Fatal(err)
	}
	w.setGo(t, true)
	w.staged = filepath.Join(t.TempDir(), "root")
	build := nixtest.Start(t, w.config, nil, "nix-build", "--no-out-link", "--store", w.staged, expr)
	out, err := build.Wait()
	if err != nil {
		t.Fatal(err)
	}
	w.out = strings.TrimSpace(out)
	os.Remove(filepath.Join(w.dir, "ran"))
	w.live = template(t, "nix-a", nixStore(releaseA))
	w.drv = strings.TrimSpace(nixtest.Nix(t, nil, "nix-instantiate", "--store", w.live, expr))
	return w
}

func (w buildWorld) setGo(t *testing.T, on bool) {
	t.Helper()
	name := filepath.Join(w.dir, "go")
	if !on {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w buildWorld) runs(t *testing.T) int {
	b, err := os.ReadFile(filepath.Join(w.dir, "ran"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestLiveMergeRacesBuild builds, with real Nix, an output path that the
// live merge adds, both ways round. Build first: the merge waits on the
// output's lock, then finds the path valid and leaves the build's copy.
// Merge first: the build waits for the lock ("waiting for lock on"), then
// finds the output valid and does not run its builder. Either way both
// succeed and the store verifies.
func TestLiveMergeRacesBuild(t *testing.T) {
	t.Run("build-first", func(t *testing.T) {
		w := newBuildWorld(t)
		old := nixtest.Paths(t, w.live)
		w.setGo(t, false)
		build := nixtest.Start(t, w.config, nil, "nix-store", "--store", w.live, "--realise", w.drv)
		build.WaitOutput(t, "building '", 20*time.Second)
		setHook(t, func(step string) {
			if step == "lock-wait" {
				// The merge blocks on the output's lock: let the build finish.
				w.setGo(t, true)
			}
		})
		rep, err := Merge(context.Background(), w.live, w.staged, MergeOptions{Live: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := build.Wait(); err != nil {
			t.Fatalf("build: %v", err)
		}
		if !slices.Equal(rep.Raced, []string{w.out}) || len(rep.Added) != 0 {
			t.Errorf("merge report: raced %v, added %v; want raced [%s], none added", rep.Raced, rep.Added, w.out)
		}
		if n := w.runs(t); n != 1 {
			t.Errorf("builder ran %d times, want 1", n)
		}
		checkBuilt(t, w, old)
	})
	t.Run("merge-first", func(t *testing.T) {
		w := newBuildWorld(t)
		old := nixtest.Paths(t, w.live)
		var build *nixtest.Proc
		setHook(t, func(step string) {
			if step == "locked" {
				build = nixtest.Start(t, w.config, nil, "nix-store", "--store", w.live, "--realise", w.drv)
				build.WaitOutput(t, "waiting for lock on", 20*time.Second)
			}
		})
		rep, err := Merge(context.Background(), w.live, w.staged, MergeOptions{Live: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := build.Wait(); err != nil {
			t.Fatalf("build: %v", err)
		}
		if !slices.Equal(rep.Added, []string{w.out}) {
			t.Errorf("merge added %v, want [%s]", rep.Added, w.out)
		}
		if n := w.runs(t); n != 0 {
			t.Errorf("builder ran %d times after the merge added its output", n)
		}
		checkBuilt(t, w, old)
	})
}

func checkBuilt(t *testing.T, w buildWorld, old []string) {
	t.Helper()
	got := nixtest.Verify(t, w.live)
	if diff := cmp.Diff(nixtest.Union(old, []string{w.drv, w.out}), got); diff != "" {
		t.Errorf("valid paths (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(w.live + w.out)
	if err != nil || string(b) != "built\n" {
		t.Errorf("output %s: %q, %v", w.out, b, err)
	}
	checkNoLocks(t, w.live)
}
