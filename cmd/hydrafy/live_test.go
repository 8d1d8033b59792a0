package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// hydrafyCmd returns the command for `hydrafy args...`: the test binary
// as hydrafy itself, a real process to kill.
func hydrafyCmd(args ...string) *exec.Cmd { return nixtest.Hydrafy(args) }

// liveReleases pushes two releases of 24 paths, 6 of them shared, to a
// loopback registry and returns their references and store paths.
func liveReleases(t *testing.T) (refs [2]string, paths [2][]string) {
	host := nixtest.Registry(t)
	for i, v := range []string{"2.24.9", "2.25.0"} {
		root := t.TempDir()
		nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: v, Paths: 24, Shared: 6, Base: "k", FilesPerPath: 6, FileSize: 4096}))
		paths[i] = nixtest.Paths(t, root)
		img, err := synth.Image(root, synth.ImageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = host + "/nixos/nix:" + v
		nixtest.PushImage(t, refs[i], img)
	}
	return refs, paths
}

// seedFresh seeds ref into a new store dir with `hydrafy seed` and
// returns the dir.
func seedFresh(t *testing.T, ref string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nix-backup")
	if out, err := hydrafyCmd("seed", "--quiet", ref, "--store", dir).CombinedOutput(); err != nil {
		t.Fatalf("fresh seed: %v: %s", err, out)
	}
	return dir
}

// TestSeedLiveKilled kills `hydrafy seed --live` processes with SIGKILL
// while a Nix process holds the store open: once while the merge holds
// path locks (seen by probing the lock files), then at random moments.
// After each kill Nix verifies the store, which holds the old release or
// the old and the new one, and no lock file is held; a last run completes
// and prints that it merged live.
func TestSeedLiveKilled(t *testing.T) {
	refs, paths := liveReleases(t)
	seedA := func() string { return seedFresh(t, refs[0]) }
	// How long a whole `seed --live` takes, on a throwaway store.
	full := nixtest.Timed(t, hydrafyCmd("seed", "--quiet", "--live", refs[1], "--store", seedA()))
	dir := seedA()
	old := paths[0]
	all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(paths[0]), paths[1]...))))
	release := nixtest.HoldStore(t, dir)
	check := func(when string) {
		t.Helper()
		if held := nixtest.HeldLocks(t, dir); len(held) > 0 {
			t.Fatalf("%s: lock files held: %v", when, held)
		}
		got := nixtest.Verify(t, dir)
		if !cmp.Equal(got, old) && !cmp.Equal(got, all) {
			t.Fatalf("%s: the store holds %d paths, neither the old %d nor all %d", when, len(got), len(old), len(all))
		}
	}

	// Killed while holding path locks.
	cmd := hydrafyCmd("seed", "--quiet", "--live", refs[1], "--store", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	for !killed {
		select {
		case err := <-exited:
			t.Fatalf("seed --live exited (%v) before it was seen holding a path lock", err)
		default:
		}
		if len(nixtest.HeldLocks(t, dir)) > 0 {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	<-exited
	check("killed holding path locks")

	// Killed at random moments of whole runs (staging included).
	t.Logf("a whole seed --live takes %v", full)
	for _, p := range nixtest.RandomKills(nixtest.Seed(t), full, 4) {
		nixtest.Kill(t, hydrafyCmd("seed", "--quiet", "--live", refs[1], "--store", dir), p)
		check("killed " + p.String())
	}

	var out bytes.Buffer
	cmd = hydrafyCmd("seed", "--live", refs[1], "--store", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("last seed --live: %v: %s", err, out.String())
	}
	if !strings.Contains(out.String(), ": merged live, ") {
		t.Errorf("last seed --live printed %q", out.String())
	}
	release()
	if diff := cmp.Diff(all, nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("store after the last run (-want +got):\n%s", diff)
	}
	if held := nixtest.HeldLocks(t, dir); len(held) > 0 {
		t.Errorf("lock files held: %v", held)
	}
}

// TestSeedLiveConcurrent runs three `hydrafy seed --live` of the same
// release into one store at once, while a Nix process holds it open: each
// stages on its own and merges under the shared big-lock and the path
// locks, so whichever comes second finds the paths valid under their locks
// and leaves them as the first wrote them. All three succeed, Nix verifies
// the store with both releases, and no lock file is left held.
func TestSeedLiveConcurrent(t *testing.T) {
	refs, paths := liveReleases(t)
	dir := seedFresh(t, refs[0])
	release := nixtest.HoldStore(t, dir)
	defer release()

	const runs = 3
	outs := make([]bytes.Buffer, runs)
	cmds := make([]*exec.Cmd, runs)
	for i := range cmds {
		cmds[i] = hydrafyCmd("seed", "--live", refs[1], "--store", dir)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("run %d: %v: %s", i, err, outs[i].String())
		}
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(paths[0]), paths[1]...))))
	// Each new path is added by one run only: a second writer of a path
	// would have replaced a valid one.
	added := 0
	for i := range outs {
		var n int
		line := outs[i].String()
		at := strings.Index(line, ": merged live, ")
		if at < 0 {
			t.Fatalf("run %d printed %q", i, line)
		}
		if _, err := fmt.Sscanf(line[at:], ": merged live, %d paths added", &n); err != nil {
			t.Fatalf("run %d printed %q: %v", i, line, err)
		}
		added += n
	}
	if want := len(all) - len(paths[0]); added != want {
		t.Errorf("the runs added %d paths in all, want %d (each new path once)", added, want)
	}
	if diff := cmp.Diff(all, nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("store after concurrent merges (-want +got):\n%s", diff)
	}
	if held := nixtest.HeldLocks(t, dir); len(held) > 0 {
		t.Errorf("lock files held: %v", held)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".hydrafy-stage-") {
			t.Errorf("staging area %s left behind", e.Name())
		}
	}
}
