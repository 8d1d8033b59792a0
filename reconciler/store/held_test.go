package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestHeldImages: a recorded image is held while every path its layers
// listed is valid; a path collected as garbage by Nix, or records reset by
// `seed --replace`, make it not held. Jobs may hold the store meanwhile:
// no lock is taken.
func TestHeldImages(t *testing.T) {
	ctx := context.Background()
	root := template(t, "nix-A", nixStore(releaseA))
	paths := releaseA.StorePaths()
	const dA, dX = "sha256:aaaa", "sha256:ffff"
	layers := []Layer{{Digest: "sha256:l1", Paths: paths[:10]}, {Digest: "sha256:l2", Paths: paths[10:]}, {Digest: "sha256:top"}}
	if err := RecordLayers(root, "example.org/nixos/nix@"+dA, layers); err != nil {
		t.Fatal(err)
	}
	// A job's Nix holds the store open (the big-lock shared) throughout.
	defer nixtest.HoldStore(t, root)()

	check := func(when string, want map[string]bool) {
		t.Helper()
		got, err := HeldImages(ctx, root, []string{dA, dX})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: held (-want +got):\n%s", when, diff)
		}
	}
	check("as recorded", map[string]bool{dA: true, dX: false})

	// A job's garbage collection deletes a path nothing references.
	refs := nixtest.RefsOf(t, root, paths)
	referenced := map[string]bool{}
	for p, rs := range refs {
		for _, r := range rs {
			if r != p {
				referenced[r] = true
			}
		}
	}
	// The profile roots the release; a job that switched it collects it.
	if err := os.RemoveAll(filepath.Join(root, "nix/var/nix/profiles")); err != nil {
		t.Fatal(err)
	}
	victim := ""
	for _, p := range paths {
		if referenced[p] {
			continue
		}
		if _, err := nixtest.Run(nil, "nix-store", "--store", root, "--delete", p); err == nil {
			victim = p
			break
		}
	}
	if victim == "" {
		t.Fatal("Nix deleted no path of the release")
	}
	check("after deleting "+victim, map[string]bool{dA: false, dX: false})

	if err := RecordLayers(root, "example.org/nixos/nix@"+dX, []Layer{{Digest: "sha256:l1", Paths: paths[:1]}}); err != nil {
		t.Fatal(err)
	}
	if err := ResetLayers(root); err != nil {
		t.Fatal(err)
	}
	check("after the records were reset", map[string]bool{dA: false, dX: false})
}
