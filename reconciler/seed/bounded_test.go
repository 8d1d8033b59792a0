package seed_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// sizeBomb is how much a hostile layer expands to: 2 GiB of zeros from
// about 2 MB of gzip.
const sizeBomb = 2 << 30

// TestHostileSizes seeds images with a layer of a few MB that expands to
// 2 GiB, and measures the disk the seed uses meanwhile: the image's own
// paths (a few kB) and db plus a small constant, never the 2 GiB.
func TestHostileSizes(t *testing.T) {
	f := newFixture(t)
	host := nixtest.Registry(t)
	for i, tc := range sizeRefusals(f) {
		t.Run(tc.refusal, func(t *testing.T) {
			bomb := nixtest.ZeroLayer(t, tc.name, sizeBomb)
			if n, _ := bomb.Size(); n > 4<<20 {
				t.Fatalf("the bomb layer is %d bytes", n)
			}
			img := withLayer(t, f.base, bomb, tc.below)
			ref := fmt.Sprintf("%s/bomb/case%d:1", host, i)
			nixtest.PushImage(t, ref, img)
			base := t.TempDir()
			dir := filepath.Join(base, "store")
			var err error
			peak := nixtest.PeakDisk(t, base, func() {
				_, err = seed.Seed(context.Background(), ref, seed.Options{Store: dir})
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("seed: %v, want a refusal about %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("refusal is not one line: %q", err)
			}
			// The image's db and paths are a few hundred kB.
			if peak > 16<<20 {
				t.Errorf("the seed used up to %d MB of disk for an image of a few kB", peak>>20)
			}
			if left, _ := os.ReadDir(base); len(left) != 0 {
				t.Errorf("the seed left %v behind", left)
			}
		})
	}
}

// sizeRefusal is a layer that expands to sizeBomb bytes, refused with
// want; refusal is the row of README's security table that lists it.
type sizeRefusal struct {
	refusal string
	name    string // of the 2 GiB file
	below   bool   // the bomb goes below the top layer (else on top)
	want    string
}

func sizeRefusals(f fixture) []sizeRefusal {
	return []sizeRefusal{
		{"a store path no db row declares", evil + "/big", true, "has no row in the image db"},
		{"a store path larger than its declared narSize", f.path + "/big", true, "holds more than the"},
		{"an image db larger than 256 MiB", "nix/var/nix/db/db.sqlite", false, "the image db would take more than"},
	}
}

// withLayer returns img with l added: just below its top layer (the db),
// or on top of it.
func withLayer(t *testing.T, img v1.Image, l v1.Layer, below bool) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if below {
		layers = append(layers[:len(layers)-1:len(layers)-1], l, layers[len(layers)-1])
	} else {
		layers = append(layers, l)
	}
	out, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
