package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

func TestSeedCommand(t *testing.T) {
	amd := nixtest.NixImage(t, synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 5, FilesPerPath: 3}), synth.ImageOptions{Arch: "amd64"})
	want := amd.Paths
	arm := nixtest.NixImage(t, synth.Release(synth.ReleaseOptions{Version: "arm", Paths: 4, FilesPerPath: 1}), synth.ImageOptions{Arch: "arm64"})
	host := nixtest.Registry(t)
	idx := nixtest.Index(t, amd.Image, arm.Image)
	digest := nixtest.PushIndex(t, host+"/nixos/nix:2.24.9", idx)
	dir := filepath.Join(t.TempDir(), "nix-backup")

	seedRun := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"seed"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := seedRun(host+"/nixos/nix:2.24.9", "--store", dir, "--platform", "linux/amd64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	summary := regexp.MustCompile(`^seeded \S+ \(` + regexp.QuoteMeta(digest) + `\) into \S+: fresh, 5 paths, [0-9.]+ MB, [0-9.]+ s\n$`)
	if !summary.MatchString(out) {
		t.Errorf("summary %q does not match %s", out, summary)
	}
	if diff := cmp.Diff(want, nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("seeded paths (-want +got):\n%s", diff)
	}

	code, out, errs = seedRun(host+"/nixos/nix:2.24.9", "--store", dir, "--platform", "linux/amd64")
	if code != 0 || !strings.Contains(out, "merged, 0 paths added (0.0 MB), 5 already valid, 5 layers reused") || errs != "" {
		t.Errorf("seed into a store without --replace: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Through a mirror: one that lacks the image is skipped with a
	// warning, one that has it serves the same digest.
	empty, mirror := nixtest.Registry(t), nixtest.Registry(t)
	nixtest.PushIndex(t, mirror+"/nixos/nix:2.24.9", idx)
	mirrored := filepath.Join(t.TempDir(), "mirrored")
	code, out, errs = seedRun(host+"/nixos/nix:2.24.9", "--store", mirrored, "--platform", "linux/amd64", "--mirror", empty, "--mirror", mirror)
	if code != 0 || !strings.Contains(out, "pulled through "+mirror+"/nixos/nix@"+digest+"\n") || !strings.Contains(out, "seeded "+host+"/nixos/nix:2.24.9 ("+digest+")") ||
		!strings.Contains(errs, "pulling through a mirror failed") {
		t.Errorf("seed --mirror: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if diff := cmp.Diff(want, nixtest.Verify(t, mirrored)); diff != "" {
		t.Errorf("paths seeded through the mirror (-want +got):\n%s", diff)
	}
	if code, _, errs := seedRun(host+"/nixos/nix:2.24.9", "--store", mirrored, "--mirror", "https://mirror.gcr.io"); code != 2 || !strings.Contains(errs, `hydrafy seed: mirror "https://mirror.gcr.io" is not HOST[:PORT][/PATH]`) {
		t.Errorf("seed --mirror with a scheme: exit %d, stderr %q", code, errs)
	}

	code, out, errs = seedRun("--quiet", "--replace", "--store", dir, "--platform", "linux/arm64", host+"/nixos/nix@"+digest)
	if code != 0 || out != "" || errs != "" {
		t.Errorf("quiet replace: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if diff := cmp.Diff(arm.Paths, nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("replaced store (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown tag", []string{host + "/nixos/nix:9.9", "--store", dir, "--replace"}, 1, "hydrafy seed: pulling " + host + "/nixos/nix:9.9: unknown tag 9.9\n"},
		{"no such platform", []string{host + "/nixos/nix:2.24.9", "--store", dir, "--replace", "--platform", "linux/riscv64"}, 1, "no linux/riscv64 image in the index (it has linux/amd64, linux/arm64)\n"},
		{"no store", []string{host + "/nixos/nix:2.24.9"}, 2, "hydrafy seed: --store DIR is required (see hydrafy seed --help)\n"},
		{"no image", []string{"--store", dir}, 2, "hydrafy seed: IMAGE is required"},
		{"two images", []string{"a", "b", "--store", dir}, 2, "hydrafy seed: one IMAGE at a time, got 2: a b (see hydrafy seed --help)\n"},
		{"unknown flag", []string{"a", "--store", dir, "--merge"}, 2, "flag provided but not defined: -merge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := seedRun(tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tc.code, tc.want)
			}
		})
	}
}
