package seed_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// TestKilledFreshSeedLeavesNothing kills (SIGKILL) a fresh seed into a dir
// that does not exist yet while it stages in the dir's parent; the next
// seed into the same dir removes what the killed one left.
func TestKilledFreshSeedLeavesNothing(t *testing.T) {
	var reg countingRegistry
	host := reg.start(t)
	img, paths := nixImage(t, release("2.24.9"))
	ref := host + "/nixos/nix:killed"
	nixtest.PushImage(t, ref, img)

	base := t.TempDir()
	dir := filepath.Join(base, "nix-backup")
	stalled := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	reg.mu.Lock()
	reg.onBlobOf = storeLayers(t, img)
	reg.onBlob = func() { close(stalled); <-release }
	reg.mu.Unlock()

	seeding := nixtest.Command("seed", childRef+"="+ref, childDir+"="+dir)
	if !nixtest.Kill(t, seeding, nixtest.KillPoint{When: stalled}) {
		t.Fatal("the seed finished; it should have stalled on a store layer")
	}
	left, _ := os.ReadDir(base)
	if len(left) != 1 || !strings.HasPrefix(left[0].Name(), ".hydrafy-stage-") {
		t.Fatalf("the killed seed left %v; want its staging area", left)
	}

	if _, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(base); len(left) != 1 || left[0].Name() != "nix-backup" {
		t.Errorf("after the next seed %s holds %v, want nix-backup only", base, left)
	}
	if got := nixtest.Verify(t, dir); strings.Join(got, " ") != strings.Join(paths, " ") {
		t.Errorf("seeded paths %q, want %q", got, paths)
	}
}
