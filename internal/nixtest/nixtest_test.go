package nixtest_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// TestSynthMatchesNix checks that stores built in Go alone are what Nix
// itself builds from the same spec: same paths, hashes and references.
func TestSynthMatchesNix(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 6, Shared: 3, FilesPerPath: 3, FileSize: 100})
	nixRoot, goRoot := t.TempDir(), t.TempDir()
	fromNix := nixtest.Build(t, nixRoot, spec)
	fromGo, err := synth.Build(goRoot, spec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromNix, fromGo); diff != "" {
		t.Errorf("synth.Build differs from Nix (-nix +go):\n%s", diff)
	}
	for _, root := range []string{nixRoot, goRoot} {
		paths := nixtest.Verify(t, root)
		if len(paths) != len(spec.Paths) {
			t.Errorf("%s: %d valid paths, want %d", root, len(paths), len(spec.Paths))
		}
		nixPath := synth.StorePath("2.24.9", "nix-2.24.9")
		refs := nixtest.References(t, root, nixPath)
		if len(refs) != len(spec.Paths)-1 {
			t.Errorf("%s: nix path has %d references, want %d", root, len(refs), len(spec.Paths)-1)
		}
	}
	link, err := os.Readlink(filepath.Join(goRoot, "nix/var/nix/profiles/default-1-link"))
	if err != nil || link != synth.StorePath("2.24.9", "nix-2.24.9") {
		t.Errorf("profile link = %q, %v; want the nix path", link, err)
	}
}

func TestVerifyCatchesCorruption(t *testing.T) {
	root := t.TempDir()
	spec := synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 1})
	infos, err := synth.Build(root, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Make a file writable, change it: --check-contents must notice.
	p := filepath.Join(root, infos[0].Path, "bin")
	if _, err := nixtest.Run(nil, "chmod", "-R", "u+w", p); err != nil {
		t.Fatal(err)
	}
	if _, err := nixtest.Run(nil, "sh", "-c", "echo tampered >> "+filepath.Join(p, "lib000")); err != nil {
		t.Fatal(err)
	}
	out, err := nixtest.Run(nil, "nix-store", "--store", root, "--verify", "--check-contents")
	if err == nil && !strings.Contains(out, "modified") {
		// Nix 2.8 reports on stderr and exits non-zero for modified paths.
		t.Fatalf("corrupted store passed verification: %s", out)
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "1", Paths: 5, FilesPerPath: 2})
	amd := nixtest.GoImage(t, spec, synth.ImageOptions{Arch: "amd64", NixVersion: "1"})
	arm := nixtest.GoImage(t, spec, synth.ImageOptions{Arch: "arm64", NixVersion: "1"})
	host := nixtest.Registry(t)
	d := nixtest.PushIndex(t, host+"/nixos/nix:1", nixtest.Index(t, amd.Image, arm.Image))
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("digest %q", d)
	}
	if len(amd.Paths) != len(spec.Paths) {
		t.Errorf("%d paths, want %d", len(amd.Paths), len(spec.Paths))
	}
	layers, err := amd.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(spec.Paths)+1 {
		t.Errorf("image has %d layers, want one per store path plus the top layer (%d)", len(layers), len(spec.Paths)+1)
	}
	for _, tc := range []struct {
		img  v1.Image
		want int
	}{{amd.Image, len(spec.Paths) + 1}, {nixtest.WithoutHistory(t, amd.Image), 0}} {
		cf, err := tc.img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if len(cf.History) != tc.want {
			t.Errorf("%d history entries, want %d", len(cf.History), tc.want)
		}
	}
}

// TestPeakDisk sees a file that exists only while fn runs.
func TestPeakDisk(t *testing.T) {
	dir := t.TempDir()
	peak := nixtest.PeakDisk(t, dir, func() {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, make([]byte, 8<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(p)
		f.Sync()
		f.Close()
		time.Sleep(200 * time.Millisecond) // long enough for a sample on a busy machine
		os.Remove(p)
	})
	if peak < 8<<20 {
		t.Errorf("peak %d, want at least 8 MiB", peak)
	}
}

// TestAddResult: build results land as Nix registers them, with their
// references and their age, and the store verifies.
func TestAddResult(t *testing.T) {
	root := t.TempDir()
	nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 3, FilesPerPath: 1}))
	deps := nixtest.Paths(t, root)
	src := nixtest.AddResult(t, root, "source", nixtest.ResultOptions{})
	old := nixtest.AddResult(t, root, "old-build", nixtest.ResultOptions{Refs: []string{deps[0], src}, Age: 48 * time.Hour})
	fresh := nixtest.AddResult(t, root, "fresh-build", nixtest.ResultOptions{Refs: []string{old}})
	nixtest.Verify(t, root)
	refs := nixtest.RefsOf(t, root, []string{src, old, fresh})
	want := map[string][]string{src: nil, old: sortedPaths(deps[0], src), fresh: {old}}
	if diff := cmp.Diff(want, refs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("references (-want +got):\n%s", diff)
	}
	if age := time.Since(nixtest.Registered(t, root, old)); age < 47*time.Hour || age > 49*time.Hour {
		t.Errorf("old build registered %s ago, want 48h", age)
	}
	if age := time.Since(nixtest.Registered(t, root, fresh)); age > time.Hour {
		t.Errorf("fresh build registered %s ago", age)
	}
}

func sortedPaths(p ...string) []string { return slices.Sorted(slices.Values(p)) }
