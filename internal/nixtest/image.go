package nixtest

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// Built is a release's store as an image: the image, the store paths it
// holds (sorted) and the root its store was built in.
type Built struct {
	Image v1.Image
	Paths []string
	Root  string
}

// NixImage builds spec's store with real Nix doing the registration in a
// temp dir and lays it out as nixos/nix does (one layer per store path,
// each with its history entry naming the path; the db on top). Releases
// from synth.Release with the same Base and Shared share paths as two
// nixos/nix releases do.
func NixImage(t testing.TB, spec synth.Spec, opts synth.ImageOptions) Built {
	t.Helper()
	root := t.TempDir()
	Build(t, root, spec)
	return image(t, root, opts)
}

// GoImage is NixImage with the store built in Go alone (synth.Build): for
// stores too big to register with Nix in a test's time; the oracle still
// verifies what hydrafy makes of it.
func GoImage(t testing.TB, spec synth.Spec, opts synth.ImageOptions) Built {
	t.Helper()
	root := t.TempDir()
	if _, err := synth.Build(root, spec); err != nil {
		t.Fatal(err)
	}
	return image(t, root, opts)
}

func image(t testing.TB, root string, opts synth.ImageOptions) Built {
	t.Helper()
	img, err := synth.Image(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return Built{Image: img, Paths: Paths(t, root), Root: root}
}

// WithoutHistory returns img with no per-layer history, as images built by
// tools that record none: which layer holds which path is then unknown.
func WithoutHistory(t testing.TB, img v1.Image) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.History = nil
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Index returns the index of imgs, one manifest each, as a registry
// serves a multi-platform release.
func Index(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	idx, err := synth.Index(imgs...)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
