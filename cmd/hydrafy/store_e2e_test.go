package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// pushReleases starts a registry and pushes to it a nixos/nix-shaped
// release of each version, built with real Nix; it returns the
// repository, HOST/nixos/nix, and the releases.
func pushReleases(t *testing.T, versions ...string) (string, []nixtest.Release) {
	t.Helper()
	host := nixtest.Registry(t)
	var rel []nixtest.Release
	for _, v := range versions {
		rel = append(rel, nixtest.PushRelease(t, host, v))
	}
	return host + "/nixos/nix", rel
}

// newUpgradeE2E is the world of one upgrade: releases A (2.24.9) and B
// (2.25.0) pushed, the project's CI pinning A as repo+tagged+"@"+A's
// digest, the live store seeded from A, and the bot watching 2.25.0 with
// no settle time.
func newUpgradeE2E(t *testing.T, tagged string) (e *e2e, repo string, a, b nixtest.Release) {
	t.Helper()
	repo, rel := pushReleases(t, "2.24.9", "2.25.0")
	a, b = rel[0], rel[1]
	e = newE2E(t, repo, "build:\n  image: "+repo+tagged+"@"+a.Digest+"\n", seeded(t, repo+"@"+a.Digest))
	e.cfg.Watch.Tag = "2.25.0"
	e.cfg.Watch.Settle = 0
	return e, repo, a, b
}

// seeded is a newE2E prepare that seeds the store from each image ref.
func seeded(t *testing.T, refs ...string) func(store string) {
	return func(store string) {
		for _, ref := range refs {
			seedStore(t, ref, store)
		}
	}
}

// seedStore seeds store from the image ref with `hydrafy seed`.
func seedStore(t testing.TB, ref, store string) {
	t.Helper()
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"seed", "--quiet", ref, "--store", store, "--platform", "linux/amd64"}, &out, &errs); code != 0 {
		t.Fatalf("hydrafy seed %s: exit %d: %s", ref, code, errs.String())
	}
}

// TestMergeWebhookMergesStore is the whole loop with the real parts: the
// live store holds release A's store (seeded with `hydrafy seed`); the
// daemon's scheduled watch pass sees the tracked tag at release B and opens
// a merge request pinning it, which triggers a reconcile: the daemon stages
// B from the registry, drains and stops the stand-in, merges B's paths into
// the live store (Nix verifies the result: A's and B's paths, nothing lost)
// and starts the runner again, still pinning A in config.toml since the
// default branch pins A, so that the merge request's own pipeline finds
// B's store. A maintainer merges it; the webhook's pass then only pins
// config.toml to B, without a second drain.
func TestMergeWebhookMergesStore(t *testing.T) {
	e, repo, a, b := newUpgradeE2E(t, "")
	e.cfg.Watch.Schedule = "@every 1s"
	stager := e.stager(t)
	e.serve(t, stager)

	// The start-up pass records A, which the live store already holds,
	// without stopping the runner.
	first := e.seedingRun(t, a.Digest)
	if first.Result != reconciler.ResultOK || len(first.Commits) != 1 || first.Commits[0].PathsAdded != 0 {
		t.Fatalf("start-up pass: %+v", first)
	}
	for _, s := range first.Steps {
		if s.Name == "stop" || s.Name == "pause" {
			t.Errorf("start-up pass drained the runner for a store it holds: %+v", first.Steps)
		}
	}

	// The watch pass proposes B; /status shows the tracked digest and the
	// merge request; the proposal's reconcile seeds B.
	var st statusJSON
	nixtest.WaitFor(t, "the proposal of B", func() bool {
		st = getStatus(t, e.base)
		return st.Tracked == b.Digest && len(st.Projects) == 1 && st.Projects[0].MergeRequest != nil
	})
	mrs := e.emu.MergeRequests("group/app")
	if len(mrs) != 1 || mrs[0].State != "opened" {
		t.Fatalf("merge requests %+v, want the proposal open", mrs)
	}
	// B was seeded before it was proposed: the MR's first pipeline, which
	// runs with image B, finds B's store.
	if !slices.ContainsFunc(st.Seeded, func(s reconciler.Seeded) bool { return s.Digest == b.Digest }) {
		t.Errorf("the MR exists but B is not seeded yet: %+v", st.Seeded)
	}
	rep := e.seedingRun(t, b.Digest)
	if rep.Result != reconciler.ResultOK || !strings.Contains(rep.Reasons[0], b.Digest) {
		t.Fatalf("pass seeding the proposal: %+v", rep)
	}
	if rep.Image != repo+"@"+a.Digest {
		t.Errorf("config.toml pins %q while the default branch pins A", rep.Image)
	}
	added := len(nixtest.Minus(b.Paths, a.Paths))
	if len(rep.Commits) != 1 || rep.Commits[0].PathsAdded != added {
		t.Errorf("commits %+v, want %d paths added", rep.Commits, added)
	}
	want := nixtest.Union(a.Paths, b.Paths)
	if diff := cmp.Diff(want, nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("live store paths (-want +got):\n%s", diff)
	}
	if len(rep.Commits) == 1 && (rep.Commits[0].PathsTotal != len(want) || rep.Commits[0].BytesTotal <= rep.Commits[0].BytesAdded) {
		t.Errorf("commit totals %+v, want %d paths", rep.Commits[0], len(want))
	}
	restarted := e.checkRestarted(t, repo+"@"+a.Digest)

	// The merge: config.toml now pins B; the runner re-reads it and keeps
	// running.
	if _, err := e.emu.Merge("group/app", mrs[0].IID, "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
	// The merge's push and merge request webhooks may make one pass or
	// two: one re-pins config.toml, none drains.
	st = waitStatus(t, e.base, "the pass after the merge", func(s statusJSON) bool {
		return s.Last != nil && strings.HasPrefix(s.Last.Reasons[0], "webhook: ") && s.Last.Image == repo+"@"+b.Digest &&
			s.Current == nil && !s.Queued
	})
	repinned := 0
	for _, r := range st.Recent {
		if !strings.HasPrefix(r.Reasons[0], "webhook: ") {
			continue
		}
		if r.Changed && r.Image == repo+"@"+b.Digest {
			repinned++
		}
		if r.Result == reconciler.ResultFailed {
			t.Errorf("pass after the merge failed: %+v", r)
		}
		for _, s := range r.Steps {
			if s.Name != "read-pins" && s.Name != "configure" {
				t.Errorf("pass after the merge ran step %s: %+v", s.Name, r.Steps)
			}
		}
	}
	if repinned != 1 {
		t.Errorf("%d passes re-pinned config.toml to B, want 1: %+v", repinned, st.Recent)
	}
	nixtest.WaitFor(t, "the stand-in to reload B", func() bool {
		now, err := standin.ReadStatus(e.status)
		return err == nil && now.Image == repo+"@"+b.Digest
	})
	if now, _ := standin.ReadStatus(e.status); now.PID != restarted.PID {
		t.Errorf("the runner was restarted for the merge: pid %d → %d", restarted.PID, now.PID)
	}
	waitMetrics(t, e.base,
		`hydrafy_merge_requests_total{action="opened"} 1`,
		"hydrafy_digest_changes_total 1",
		`hydrafy_reconciles_total{result="ok"}`,
		"hydrafy_runner_downtime_seconds_count 1",
		"hydrafy_store_paths_added_total "+strconv.Itoa(added),
		"hydrafy_store_paths "+strconv.Itoa(len(want)),
	)
	t.Logf("runner downtime %.3fs for %d paths", rep.DowntimeSeconds, added)
}

// TestLostImageSeededAgain: a seeded image whose path a job's garbage
// collection deleted is found missing by the next pass (through the layer
// records and the live db) and merged again; the state no longer claims
// it meanwhile.
func TestLostImageSeededAgain(t *testing.T) {
	repo, rel := pushReleases(t, "2.24.9")
	a := rel[0]
	e := newE2E(t, repo, "build:\n  image: "+repo+"@"+a.Digest+"\n", seeded(t, repo+"@"+a.Digest))
	stager := e.stager(t)
	d, err := newDaemon(e.cfg, slog.New(slog.DiscardHandler), stager)
	if err != nil {
		t.Fatal(err)
	}
	defer d.rec.Close()
	manual := reconciler.Reason{Kind: reconciler.KindManual}
	if rep := d.rec.Once(context.Background(), manual); rep.Result != reconciler.ResultOK || len(rep.Seeded) != 1 || len(rep.Lost) != 0 {
		t.Fatalf("first pass: %+v", rep)
	}
	if rep := d.rec.Once(context.Background(), manual); rep.Result != reconciler.ResultNoop || len(rep.Lost) != 0 {
		t.Fatalf("second pass, store intact: %+v", rep)
	}

	// A job switches the profile away and collects garbage: Nix deletes
	// one of A's paths while the runner's jobs hold the store. (The job's
	// runner does not mount hydrafy's GC roots.)
	for _, d := range []string{"nix/var/nix/profiles", "nix/var/nix/gcroots/hydrafy"} {
		if err := os.RemoveAll(filepath.Join(e.store, d)); err != nil {
			t.Fatal(err)
		}
	}
	deleted := ""
	for _, p := range slices.Backward(a.Paths) {
		if _, err := nixtest.Run(nil, "nix-store", "--store", e.store, "--delete", p); err == nil {
			deleted = p
			break
		}
	}
	if deleted == "" {
		t.Fatal("Nix deleted none of A's paths")
	}

	rep := d.rec.Once(context.Background(), manual)
	if rep.Result != reconciler.ResultOK || !slices.Equal(rep.Lost, []string{a.Digest}) || !slices.Equal(rep.Seeded, []string{a.Digest}) {
		t.Fatalf("pass after the garbage collection: %+v", rep)
	}
	if len(rep.Commits) != 1 || rep.Commits[0].PathsAdded != 1 {
		t.Errorf("commits %+v, want %s added again", rep.Commits, deleted)
	}
	if diff := cmp.Diff(a.Paths, nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("live store paths (-want +got):\n%s", diff)
	}
}
