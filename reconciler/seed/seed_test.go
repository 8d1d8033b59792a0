package seed_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// layout lists the directories of dir down to depth 4 and every other
// top-level entry: what a seeded store dir holds.
func layout(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if depth := strings.Count(rel, "/"); depth > 4 || strings.HasPrefix(rel, "nix/store/") {
			return filepath.SkipDir
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestSeedFresh(t *testing.T) {
	img, paths, root := nixImageRoot(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 5, FilesPerPath: 3}))
	host := nixtest.Registry(t)
	ref := host + "/nixos/nix:1"
	nixtest.PushImage(t, ref, img)
	// Exactly nix/store and the image's nix/var/nix/db.
	store := []string{"nix", "nix/store", "nix/var", "nix/var/nix", "nix/var/nix/db"}
	db, err := os.ReadDir(filepath.Join(root, "nix/var/nix/db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range db {
		store = append(store, "nix/var/nix/db/"+e.Name())
	}
	// hydrafy's GC roots.
	store = append(store, "nix/var/nix/gcroots", "nix/var/nix/gcroots/hydrafy")
	// The layer records of the store (DIR/.hydrafy/layers.json) come first.
	store = append([]string{".hydrafy", ".hydrafy/layers.json"}, store...)
	for _, tc := range []struct {
		name    string
		prepare func(dir string) error
		want    []string
	}{
		{"missing dir", func(string) error { return nil }, store},
		{"empty dir", func(dir string) error { return os.Mkdir(dir, 0o755) }, store},
		{"dir with other state", func(dir string) error { return os.MkdirAll(filepath.Join(dir, ".hydrafy"), 0o755) }, store},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nix-backup")
			if err := tc.prepare(dir); err != nil {
				t.Fatal(err)
			}
			res, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir})
			if err != nil {
				t.Fatal(err)
			}
			if res.How != seed.Fresh || res.Paths != len(paths) || res.Bytes == 0 {
				t.Errorf("result %+v", res)
			}
			if diff := cmp.Diff(tc.want, layout(t, dir)); diff != "" {
				t.Errorf("store dir layout (-want +got):\n%s", diff)
			}
			// The seed roots the image for jobs' garbage collection.
			nixtest.JobGC(t, dir, filepath.Join(dir, "nix/var/nix/gcroots/hydrafy"))
			if diff := cmp.Diff(paths, nixtest.Verify(t, dir)); diff != "" {
				t.Errorf("after a job's GC (-seeded +left):\n%s", diff)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
				t.Errorf("next to the store dir: %v, want nothing left", entries)
			}
			if diff := cmp.Diff(paths, nixtest.Verify(t, dir)); diff != "" {
				t.Errorf("seeded paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSeedReplace(t *testing.T) {
	oldImg, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "old", Paths: 4, FilesPerPath: 2}))
	newImg, newPaths := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "new", Paths: 6, FilesPerPath: 2}))
	host := nixtest.Registry(t)
	nixtest.PushImage(t, host+"/nixos/nix:old", oldImg)
	nixtest.PushImage(t, host+"/nixos/nix:new", newImg)
	dir := t.TempDir()
	if _, err := seed.Seed(context.Background(), host+"/nixos/nix:old", seed.Options{Store: dir}); err != nil {
		t.Fatal(err)
	}
	cache := nixtest.Add(t, dir, t.TempDir())
	if _, err := seed.Seed(context.Background(), host+"/nixos/nix:new", seed.Options{Store: dir}); err != nil {
		t.Fatalf("seed into a store without --replace (a merge): %v", err)
	}
	if !slices.Contains(nixtest.Paths(t, dir), cache) {
		t.Fatalf("the merge lost %s", cache)
	}

	res, err := seed.Seed(context.Background(), host+"/nixos/nix:new", seed.Options{Store: dir, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.How != seed.Replaced {
		t.Errorf("how = %s, want replaced", res.How)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 || entries[0].Name() != ".hydrafy" || entries[1].Name() != "nix" {
		t.Errorf("store dir holds %v, want only .hydrafy and nix (the old store removed)", entries)
	}
	images, err := store.SeededImages(dir)
	if err != nil || len(images) != 1 || !strings.HasSuffix(images[0], "@"+res.Digest) {
		t.Errorf("seeded images after --replace: %v, %v; want the new image only", images, err)
	}
	if diff := cmp.Diff(newPaths, nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("replaced store's paths (-want +got):\n%s", diff)
	}
}

// TestSeedFailureLeavesDir fails a --replace in the middle in several ways
// and checks that the store dir is exactly as it was.
func TestSeedFailureLeavesDir(t *testing.T) {
	good, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "good", Paths: 6, FilesPerPath: 2}))
	root := t.TempDir()
	infos := nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: "lying", Paths: 4, FilesPerPath: 2}))
	bin := filepath.Join(root, infos[2].Path, "bin")
	if _, err := nixtest.Run(nil, "chmod", "-R", "u+w", bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "pkg002"), []byte("#!/bin/sh\necho changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lying, err := synth.Image(root, synth.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := good.Layers()
	victim, _ := layers[3].Digest()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var biting atomic.Bool
	var blobs atomic.Int32
	host := nixtest.RegistryWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case !biting.Load() || r.Method != http.MethodGet:
			case strings.Contains(r.URL.Path, "/corrupt/") && strings.HasSuffix(r.URL.Path, victim.String()):
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				b := rec.Body.Bytes()
				b[len(b)/3] ^= 0x55
				w.WriteHeader(rec.Code)
				w.Write(b)
				return
			case strings.Contains(r.URL.Path, "/cancel/blobs/") && blobs.Add(1) == 4:
				cancel()
				<-r.Context().Done()
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	nixtest.PushImage(t, host+"/nixos/corrupt:1", good)
	nixtest.PushImage(t, host+"/nixos/cancel:1", good)
	nixtest.PushImage(t, host+"/nixos/lying:1", lying)
	biting.Store(true)

	for _, tc := range []struct {
		name, ref string
		ctx       context.Context
		want      string
	}{
		{"corrupt layer", host + "/nixos/corrupt:1", context.Background(), victim.String()},
		{"hash mismatch", host + "/nixos/lying:1", context.Background(), infos[2].Path + ": NAR hash"},
		{"cancelled", host + "/nixos/cancel:1", ctx, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "store")
			nixtest.Build(t, dir, synth.Release(synth.ReleaseOptions{Version: "live", Paths: 4, FilesPerPath: 2}))
			before := nixtest.Snapshot(t, base)
			_, err := seed.Seed(tc.ctx, tc.ref, seed.Options{Store: dir, Replace: true, Image: image.Options{Parallel: 2}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			nixtest.SameTree(t, "the store dir", before, nixtest.Snapshot(t, base))

			// The same failure into a missing dir leaves no dir behind.
			if tc.ctx.Err() != nil {
				return
			}
			missing := filepath.Join(t.TempDir(), "store")
			if _, err := seed.Seed(tc.ctx, tc.ref, seed.Options{Store: missing}); err == nil {
				t.Fatal("seeded into a missing dir")
			}
			if entries, _ := os.ReadDir(filepath.Dir(missing)); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Error("the cancel case never cancelled")
	}
}
