package seed_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// Releases that share 17 of 20 paths, as consecutive nixos/nix releases do.
func release(version string) synth.Spec {
	return synth.Release(synth.ReleaseOptions{Version: version, Paths: 20, Shared: 17, Base: "nixpkgs", FilesPerPath: 3, FileSize: 200})
}

// countingRegistry is nixtest's registry counting blob GETs by digest;
// onBlob, when set, runs before the first GET of a blob in onBlobOf is
// served.
type countingRegistry struct {
	*nixtest.Reg
	mu       sync.Mutex
	gets     map[string]int
	onBlob   func()
	onBlobOf []string
}

func (c *countingRegistry) start(t *testing.T) string {
	c.gets = map[string]int{}
	c.Reg = nixtest.NewReg(t)
	c.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			return false
		}
		c.mu.Lock()
		d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		c.gets[d]++
		var hook func()
		if slices.Contains(c.onBlobOf, d) {
			hook, c.onBlob = c.onBlob, nil
		}
		c.mu.Unlock()
		if hook != nil {
			hook()
		}
		return false
	})
	return c.Host
}

func (c *countingRegistry) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gets
	c.gets = map[string]int{}
	return g
}

// imageLayers returns the digests of img's store layers (all but the top).
func storeLayers(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers[:len(layers)-1] {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

// TestSeedMerge seeds one release, lets a job add to the store, then
// seeds the next release into it: old paths, the job's path and the new
// paths are valid, the new paths' references are the image's, and the
// layers of paths the store held are not downloaded.
func TestSeedMerge(t *testing.T) {
	ctx := context.Background()
	oldImg, oldPaths := nixImage(t, release("2.24.9"))
	newImg, newPaths, newRoot := nixImageRoot(t, release("2.25.0"))
	var reg countingRegistry
	host := reg.start(t)
	nixtest.PushImage(t, host+"/nixos/nix:2.24.9", oldImg)
	newDigest := nixtest.PushImage(t, host+"/nixos/nix:2.25.0", newImg)
	dir := filepath.Join(t.TempDir(), "nix-backup")
	if _, err := seed.Seed(ctx, host+"/nixos/nix:2.24.9", seed.Options{Store: dir}); err != nil {
		t.Fatal(err)
	}
	cache := nixtest.Add(t, dir, t.TempDir())
	reg.reset()

	res, err := seed.Seed(ctx, host+"/nixos/nix:2.25.0", seed.Options{Store: dir})
	if err != nil {
		t.Fatal(err)
	}
	gets := reg.reset()
	if res.How != seed.Merged || res.Merge == nil || res.Merge.AlreadyValid != 17 || res.LayersSkipped != 17 {
		t.Fatalf("result %+v, merge %+v; want merged, 17 already valid, 17 layers skipped", res, res.Merge)
	}
	wantAdded := []string{}
	for _, p := range newPaths {
		if !slices.Contains(oldPaths, p) {
			wantAdded = append(wantAdded, p)
		}
	}
	if diff := cmp.Diff(wantAdded, res.Merge.Added); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	for _, d := range storeLayers(t, oldImg)[:17] {
		if gets[d] != 0 {
			t.Errorf("layer %s of a path the store holds was downloaded %d times", d, gets[d])
		}
	}
	got := nixtest.Verify(t, dir)
	want := append(append(append([]string{}, oldPaths...), newPaths...), cache)
	if diff := cmp.Diff(nixtest.Union(want), got); diff != "" {
		t.Errorf("valid paths after the merge (-want +got):\n%s", diff)
	}
	for _, p := range newPaths {
		if diff := cmp.Diff(nixtest.References(t, newRoot, p), nixtest.References(t, dir, p)); diff != "" {
			t.Errorf("references of %s (-image +store):\n%s", p, diff)
		}
	}
	images, err := store.SeededImages(dir)
	if err != nil || len(images) != 2 || !strings.HasSuffix(images[1], "@"+newDigest) && !strings.HasSuffix(images[0], "@"+newDigest) {
		t.Errorf("seeded images %v, %v; want both", images, err)
	}

	// Again: nothing to add, no store layer pulled.
	res, err = seed.Seed(ctx, host+"/nixos/nix:2.25.0", seed.Options{Store: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Merge.Added) != 0 || res.LayersSkipped != 20 {
		t.Errorf("second merge: %d added, %d layers skipped; want 0 and 20", len(res.Merge.Added), res.LayersSkipped)
	}
	if n := len(reg.reset()); n > 2 {
		t.Errorf("second merge downloaded %d blobs; want the config and the top layer only", n)
	}
}

// TestSeedMergeDryRun reports what a merge would add and changes nothing
// in the store dir.
func TestSeedMergeDryRun(t *testing.T) {
	ctx := context.Background()
	host := nixtest.Registry(t)
	dir, oldPaths, newPaths, _ := seedOld(t, host)
	before := nixtest.Snapshot(t, filepath.Dir(dir))
	res, err := seed.Seed(ctx, host+"/nixos/nix:new", seed.Options{Store: dir, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	nixtest.SameTree(t, "the store dir", before, nixtest.Snapshot(t, filepath.Dir(dir)))
	if !res.Merge.DryRun || len(res.Merge.Added) != 3 || res.Merge.AddedBytes == 0 {
		t.Errorf("dry run report %+v", res.Merge)
	}
	for _, p := range res.Merge.Added {
		if slices.Contains(oldPaths, p) || !slices.Contains(newPaths, p) {
			t.Errorf("dry run would add %s", p)
		}
	}
	for _, o := range []seed.Options{{Store: dir, DryRun: true, Replace: true}, {Store: t.TempDir(), DryRun: true}} {
		if _, err := seed.Seed(ctx, host+"/nixos/nix:new", o); err == nil || !strings.Contains(err.Error(), "--dry-run") {
			t.Errorf("dry run %+v: %v, want a refusal", o, err)
		}
	}
}

// TestSeedMergeLocked fails a merge and a replace while a Nix process has
// the store open past the lock timeout, leaving the store dir as it was.
func TestSeedMergeLocked(t *testing.T) {
	ctx := context.Background()
	host := nixtest.Registry(t)
	dir, _, _, _ := seedOld(t, host)
	lock := filepath.Join(dir, "nix/var/nix/db/big-lock")
	holder := exec.Command("flock", "-o", "-s", lock, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	for exec.Command("flock", "-n", "-x", lock, "true").Run() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	before := nixtest.Snapshot(t, filepath.Dir(dir))
	for _, replace := range []bool{false, true} {
		_, err := seed.Seed(ctx, host+"/nixos/nix:new", seed.Options{Store: dir, Replace: replace, LockTimeout: 200 * time.Millisecond})
		want := "a Nix process still has the store open (" + lock + " held) after 200ms"
		if err == nil || err.Error() != want {
			t.Errorf("replace=%v under a held lock: %v, want %q", replace, err, want)
		}
		nixtest.SameTree(t, "the store dir", before, nixtest.Snapshot(t, filepath.Dir(dir)))
	}
}

// TestSeedMergeGarbageCollected deletes a path the stager skipped (as a
// job's garbage collection would) while the image is being pulled: the
// merge notices under the lock, pulls every layer and completes.
func TestSeedMergeGarbageCollected(t *testing.T) {
	ctx := context.Background()
	var reg countingRegistry
	host := reg.start(t)
	dir, oldPaths, newPaths, newImg := seedOld(t, host)
	// lib016 is shared; the old release's paths above it reference it.
	var gone []string
	for _, p := range oldPaths {
		if strings.HasSuffix(p, "-lib016-1.0") || !slices.Contains(newPaths, p) {
			gone = append(gone, p)
		}
	}
	if len(gone) != 4 {
		t.Fatalf("paths to collect: %v", gone)
	}
	reg.onBlobOf = storeLayers(t, newImg)
	reg.onBlob = func() {
		// A job whose runner does not mount hydrafy's GC roots.
		if err := os.RemoveAll(filepath.Join(dir, "nix/var/nix/gcroots/hydrafy")); err != nil {
			t.Error(err)
		}
		nixtest.Nix(t, nil, "nix-store", append([]string{"--store", dir, "--delete"}, gone...)...)
	}
	res, err := seed.Seed(ctx, host+"/nixos/nix:new", seed.Options{Store: dir, Image: image.Options{Parallel: 1}})
	if err != nil {
		t.Fatal(err)
	}
	lib016 := gone[0]
	for _, p := range gone {
		if strings.HasSuffix(p, "-lib016-1.0") {
			lib016 = p
		}
	}
	if res.LayersSkipped != 0 || !slices.Contains(res.Merge.Added, lib016) {
		t.Errorf("merge after a collection: %d layers skipped, added %v", res.LayersSkipped, res.Merge.Added)
	}
	got := nixtest.Verify(t, dir)
	want := nixtest.Union(newPaths, nixtest.Minus(oldPaths, gone))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("valid paths (-want +got):\n%s", diff)
	}
}

// TestSeedMergeRefusesSchema refuses to merge into a store whose db schema
// differs from the image's, offering --replace, and changes nothing.
func TestSeedMergeRefusesSchema(t *testing.T) {
	ctx := context.Background()
	host := nixtest.Registry(t)
	dir, _, _, _ := seedOld(t, host)
	if err := os.WriteFile(filepath.Join(dir, "nix/var/nix/db/schema"), []byte("9"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := nixtest.Snapshot(t, filepath.Dir(dir))
	_, err := seed.Seed(ctx, host+"/nixos/nix:new", seed.Options{Store: dir})
	want := "db schema: the live store has version 9 and the image version 10; merging across versions is not possible, use --replace to install exactly the image's store"
	if err == nil || err.Error() != want {
		t.Fatalf("merge across schemas: %v, want %q", err, want)
	}
	nixtest.SameTree(t, "the store dir", before, nixtest.Snapshot(t, filepath.Dir(dir)))
}

// seedOld pushes release 2.24.9 as nixos/nix:old and 2.25.0 as
// nixos/nix:new to host, seeds a store dir from old, and returns the dir,
// both releases' store paths and the new image.
func seedOld(t *testing.T, host string) (string, []string, []string, v1.Image) {
	t.Helper()
	oldImg, oldPaths := nixImage(t, release("2.24.9"))
	newImg, newPaths := nixImage(t, release("2.25.0"))
	nixtest.PushImage(t, host+"/nixos/nix:old", oldImg)
	nixtest.PushImage(t, host+"/nixos/nix:new", newImg)
	dir := filepath.Join(t.TempDir(), "nix-backup")
	if _, err := seed.Seed(context.Background(), host+"/nixos/nix:old", seed.Options{Store: dir}); err != nil {
		t.Fatal(err)
	}
	return dir, oldPaths, newPaths, newImg
}
