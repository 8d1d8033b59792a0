package main

import (
	"context"
	"slices"
	"testing"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// TestDaemonSeedsDefaultImage: runner.default_image is seeded although no
// project pins a digest, and config.toml pins it.
func TestDaemonSeedsDefaultImage(t *testing.T) {
	e := newE2E(t, "nixos/nix", "build:\n  image: nixos/nix:latest\n", nil)
	e.cfg.Runner.DefaultImage = "nixos/nix@" + e2eDigest
	d := newTestDaemon(t, e)
	rep := d.rec.Once(context.Background(), reconciler.Reason{Kind: reconciler.KindManual})
	if rep.Result != reconciler.ResultOK || !slices.Equal(rep.Seeded, []string{e2eDigest}) || rep.Image != "nixos/nix@"+e2eDigest {
		t.Errorf("pass: %+v", rep)
	}
}
