package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// TestSeedCommandMerge runs `hydrafy seed` on a store dir that holds an
// older release: --dry-run lists what would be added and changes nothing,
// the merge keeps what jobs built, and a store held open by Nix past
// --lock-timeout fails with one line.
func TestSeedCommandMerge(t *testing.T) {
	host := nixtest.Registry(t)
	var paths [2][]string
	for i, v := range []string{"2.24.9", "2.25.0"} {
		b := nixtest.NixImage(t, synth.Release(synth.ReleaseOptions{Version: v, Paths: 8, Shared: 6, Base: "n", FilesPerPath: 2}), synth.ImageOptions{})
		paths[i] = b.Paths
		nixtest.PushImage(t, host+"/nixos/nix:"+v, b.Image)
	}
	dir := filepath.Join(t.TempDir(), "nix-backup")
	seedRun := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"seed"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, errs := seedRun(host+"/nixos/nix:2.24.9", "--store", dir); code != 0 {
		t.Fatalf("fresh seed: exit %d: %s", code, errs)
	}
	cache := nixtest.Add(t, dir, t.TempDir())
	var added []string
	for _, p := range paths[1] {
		if !slices.Contains(paths[0], p) {
			added = append(added, p)
		}
	}

	before := nixtest.Paths(t, dir)
	code, out, errs := seedRun(host+"/nixos/nix:2.25.0", "--store", dir, "--dry-run")
	wantOut := regexp.MustCompile(`^dry run: merging \S+ \(sha256:[0-9a-f]{64}\) into \S+ would add 2 paths \([0-9.]+ MB\), 6 already valid\n  ` +
		regexp.QuoteMeta(added[0]) + "\n  " + regexp.QuoteMeta(added[1]) + "\n$")
	if code != 0 || !wantOut.MatchString(out) || errs != "" {
		t.Errorf("dry run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if diff := cmp.Diff(before, nixtest.Paths(t, dir)); diff != "" {
		t.Errorf("dry run changed the store (-before +after):\n%s", diff)
	}

	lock := filepath.Join(dir, "nix/var/nix/db/big-lock")
	holder := exec.Command("flock", "-o", "-s", lock, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	for exec.Command("flock", "-n", "-x", lock, "true").Run() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errs = seedRun(host+"/nixos/nix:2.25.0", "--store", dir, "--lock-timeout", "300ms")
	if code != 1 || out != "" || errs != "hydrafy seed: a Nix process still has the store open ("+lock+" held) after 300ms\n" {
		t.Errorf("merge under a held lock: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	holder.Process.Kill()
	holder.Wait()

	code, out, errs = seedRun(host+"/nixos/nix:2.25.0", "--store", dir)
	summary := regexp.MustCompile(`^seeded \S+ \(sha256:[0-9a-f]{64}\) into \S+: merged, 2 paths added \([0-9.]+ MB\), 6 already valid, 6 layers reused, [0-9.]+ s\n$`)
	if code != 0 || !summary.MatchString(out) || errs != "" {
		t.Errorf("merge: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	want := append(append([]string{cache}, paths[0]...), added...)
	if diff := cmp.Diff(slices.Sorted(slices.Values(want)), nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("merged store (-want +got):\n%s", diff)
	}
}
