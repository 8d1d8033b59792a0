package seed_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// TestSeedLayeredDB seeds an image built on top of a nixos/nix image (as
// `FROM nixos/nix` + `RUN nix-env -i …` makes one): an upper layer adds a
// store path and replaces the db, and whites out the db's old log. The
// upper db must win, the lower one's log must be gone.
func TestSeedLayeredDB(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 2})
	lower := t.TempDir()
	nixtest.Build(t, lower, spec)
	base, err := synth.Image(lower, synth.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}

	extra := synth.Path{Name: "hello-2.12", Refs: []string{"pkg000-1"}, Files: []synth.File{{Name: "bin/hello", Exec: true, Data: "#!/bin/sh\necho hello\n"}}}
	spec.Paths = append(spec.Paths, extra)
	upper := t.TempDir()
	nixtest.Build(t, upper, spec)
	want := nixtest.Paths(t, upper)
	helloPath := synth.StorePath("1", "hello-2.12")
	layer := treeEntries(t, filepath.Join(upper, helloPath), helloPath)
	db, err := os.ReadFile(filepath.Join(upper, "nix/var/nix/db/db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	layer = append(layer, reg("nix/var/nix/db/db.sqlite", string(db), 0o644), reg("nix/var/nix/db/.wh.db.sqlite-wal", "", 0))

	host := nixtest.Registry(t)
	ref := host + "/nixos/nix-with-hello:1"
	nixtest.PushImage(t, ref, appendLayers(t, base, layer))
	dir := filepath.Join(t.TempDir(), "store")
	res, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Paths != len(want) {
		t.Errorf("seeded %d paths, want %d", res.Paths, len(want))
	}
	if _, err := os.Lstat(filepath.Join(dir, "nix/var/nix/db/db.sqlite-wal")); err == nil {
		t.Error("the whited-out db.sqlite-wal is in the seeded db")
	}
	if diff := cmp.Diff(want, nixtest.Verify(t, dir)); diff != "" {
		t.Errorf("seeded paths (-want +got):\n%s", diff)
	}
}
