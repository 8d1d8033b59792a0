package seed_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// noHistory returns img's layers in an image whose config has no history
// comments, as images rebuilt by other tools have; with repack, every
// store layer is written again with one more (dropped) entry, so that its
// digest is new but it holds the same store path.
func noHistory(t testing.TB, img v1.Image, repack bool) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if repack {
		for i, l := range layers[:len(layers)-1] {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			orig, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "etc/repacked", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
			tw.Flush() // no end marker: the original layer follows
			b := append(buf.Bytes(), orig...)
			layers[i], err = tarball.LayerFromOpener(func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(b)), nil
			}, tarball.WithMediaType(types.DockerLayer))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeedMergeWithoutHistory merges releases whose images carry no
// history comments. The layer records of the first seed come from what
// its layers held, so the merge downloads none of the shared layers; and
// when the shared layers are new blobs holding valid paths, their entries
// are neither written nor hashed.
func TestSeedMergeWithoutHistory(t *testing.T) {
	ctx := context.Background()
	oldFull, oldPaths := nixImage(t, release("2.24.9"))
	newFull, newPaths := nixImage(t, release("2.25.0"))
	oldImg, newImg, repacked := noHistory(t, oldFull, false), noHistory(t, newFull, false), noHistory(t, newFull, true)
	var reg countingRegistry
	host := reg.start(t)
	nixtest.PushImage(t, host+"/plain/nix:old", oldImg)
	nixtest.PushImage(t, host+"/plain/nix:new", newImg)
	nixtest.PushImage(t, host+"/plain/nix:repacked", repacked)

	for _, tc := range []struct {
		name, tag        string
		skipped, leftOut int
	}{
		{"same layers", "new", 17, 0},
		{"repacked layers", "repacked", 0, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nix-backup")
			if _, err := seed.Seed(ctx, host+"/plain/nix:old", seed.Options{Store: dir}); err != nil {
				t.Fatal(err)
			}
			reg.reset()
			res, err := seed.Seed(ctx, host+"/plain/nix:"+tc.tag, seed.Options{Store: dir})
			if err != nil {
				t.Fatal(err)
			}
			gets := reg.reset()
			if res.LayersSkipped != tc.skipped || res.Merge.AlreadyValid != 17 || len(res.Merge.Added) != 3 {
				t.Errorf("merge: %d layers skipped, %d already valid, %d added; want %d, 17, 3", res.LayersSkipped, res.Merge.AlreadyValid, len(res.Merge.Added), tc.skipped)
			}
			if tc.skipped > 0 {
				for _, d := range storeLayers(t, oldImg)[:17] {
					if gets[d] != 0 {
						t.Errorf("shared layer %s was downloaded %d times", d, gets[d])
					}
				}
			}
			// The valid paths of the layers pulled are neither written nor hashed.
			if res.PathsLeftValid != tc.leftOut {
				t.Errorf("%d valid paths left out of the stage, want %d", res.PathsLeftValid, tc.leftOut)
			}
			want := nixtest.Union(oldPaths, newPaths)
			if diff := cmp.Diff(want, nixtest.Verify(t, dir)); diff != "" {
				t.Errorf("valid paths after the merge (-want +got):\n%s", diff)
			}
		})
	}
}
