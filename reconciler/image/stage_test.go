package image_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// nixImage builds a store with real Nix from spec and lays it out as a
// nixos/nix image for arch. It returns the image and its store paths.
func nixImage(t *testing.T, spec synth.Spec, arch string) (v1.Image, []string) {
	t.Helper()
	root := t.TempDir()
	nixtest.Build(t, root, spec)
	img, err := synth.Image(root, synth.ImageOptions{Arch: arch, NixVersion: spec.Seed})
	if err != nil {
		t.Fatal(err)
	}
	return img, nixtest.Paths(t, root)
}

func stage(t *testing.T, ref string, opts image.Options) (*image.Staged, error) {
	t.Helper()
	if opts.StageIn == "" {
		opts.StageIn = t.TempDir()
	}
	st, err := image.Stage(context.Background(), ref, opts)
	if st != nil {
		t.Cleanup(func() { st.Close() })
	}
	return st, err
}

func TestStageVerifiesWithNix(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 6, FilesPerPath: 5, FileSize: 3000})
	img, want := nixImage(t, spec, "amd64")
	host := nixtest.Registry(t)
	digest := nixtest.PushImage(t, host+"/nixos/nix:2.24.9", img)

	st, err := stage(t, host+"/nixos/nix:2.24.9", image.Options{Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest != digest || st.Manifest != digest {
		t.Errorf("digests %s, %s; want %s", st.Digest, st.Manifest, digest)
	}
	if diff := cmp.Diff(want, st.Paths); diff != "" {
		t.Errorf("staged paths (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "nix" {
		t.Errorf("staging dir holds %v, want only nix", entries)
	}
	if _, err := os.Lstat(filepath.Join(st.Dir, "etc")); err == nil {
		t.Error("etc/ was extracted")
	}
	got := nixtest.Verify(t, st.Dir)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nix path-info --all (-want +got):\n%s", diff)
	}
}
