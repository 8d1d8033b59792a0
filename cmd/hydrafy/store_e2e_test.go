package main

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// pushRelease builds a nixos/nix-shaped release with real Nix, pushes it as
// a one-platform index and returns its digest and store paths.
func pushRelease(t *testing.T, host, version string) (string, []string) {
	t.Helper()
	root := t.TempDir()
	nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: version, Paths: 6, Shared: 3, Base: "nixpkgs", FilesPerPath: 3}))
	img, err := synth.Image(root, synth.ImageOptions{Arch: "amd64", NixVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := synth.Index(img)
	if err != nil {
		t.Fatal(err)
	}
	return nixtest.PushIndex(t, host+"/nixos/nix:"+version, idx), nixtest.Paths(t, root)
}

// TestMergeWebhookMergesStore is the whole loop with the real store: the
// live store holds release A's store (seeded with `hydrafy seed`); a merge
// request pinning release B is merged; the daemon stages B from the
// registry, drains and stops the stand-in, merges B's paths into the live
// store (Nix verifies the result: A's and B's paths, nothing lost), pins
// config.toml to B and starts the runner again.
func TestMergeWebhookMergesStore(t *testing.T) {
	host := nixtest.Registry(t)
	digestA, pathsA := pushRelease(t, host, "2.24.9")
	digestB, pathsB := pushRelease(t, host, "2.25.0")
	repo := host + "/nixos/nix"

	e := newE2E(t, repo, "build:\n  image: "+repo+"@"+digestA+"\n", func(store string) {
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{"seed", "--quiet", repo + "@" + digestA, "--store", store, "--platform", "linux/amd64"}, &out, &errs); code != 0 {
			t.Fatalf("hydrafy seed: exit %d: %s", code, errs.String())
		}
	})
	stager, err := newStager(e.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.serve(t, stager)

	// The start-up pass records A, which the live store already holds.
	first := e.seedingRun(t, digestA)
	if first.Result != reconciler.ResultOK || len(first.Commits) != 1 || first.Commits[0].PathsAdded != 0 {
		t.Fatalf("start-up pass: %+v", first)
	}

	e.mergePin(t, "build:\n  image: "+repo+"@"+digestB+"\n")
	rep := e.seedingRun(t, digestB)
	if rep.Result != reconciler.ResultOK {
		t.Fatalf("pass after the merge: %+v", rep)
	}
	added := 0
	for _, p := range pathsB {
		if !slices.Contains(pathsA, p) {
			added++
		}
	}
	if len(rep.Commits) != 1 || rep.Commits[0].PathsAdded != added {
		t.Errorf("commits %+v, want %d paths added", rep.Commits, added)
	}
	want := append(slices.Clone(pathsA), pathsB...)
	slices.Sort(want)
	want = slices.Compact(want)
	if diff := cmp.Diff(want, nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("live store paths (-want +got):\n%s", diff)
	}
	e.checkRestarted(t, repo+"@"+digestB)
	t.Logf("runner downtime %.3fs for %d paths", rep.DowntimeSeconds, added)
}
