package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestCheckSeedsBeforeProposing: `hydrafy check` on the runner host runs
// the daemon's pass in its own process. Release B is merged into the live
// store (real Nix verifies: A's and B's paths) before the merge request
// opens, and the description says the store holds it. Then, with the
// daemon running on the same state dir, check asks the daemon for the
// pass and says so.
func TestCheckSeedsBeforeProposing(t *testing.T) {
	repo, rel := pushReleases(t, "2.24.9", "2.25.0")
	a, b := rel[0], rel[1]
	e := newE2E(t, repo, "build:\n  image: "+repo+":2.24.9@"+a.Digest+"\n", seeded(t, repo+"@"+a.Digest))
	e.cfg.Watch.Tag = "2.25.0"
	e.cfg.Watch.Settle = 0
	stager := e.stager(t)
	var out bytes.Buffer
	if err := checkSeeding(t.Context(), e.cfg, slog.New(slog.DiscardHandler), stager, time.Now(), &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"digest:     " + b.Digest, "version:    2.25.0", "seeding:    seeded by pass ", "(in this process, as the daemon does)", "group/app: opened !1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	want := append(slices.Clone(a.Paths), b.Paths...)
	slices.Sort(want)
	want = slices.Compact(want)
	if diff := cmp.Diff(want, nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("live store paths after check (-want +got):\n%s", diff)
	}
	mrs := e.emu.MergeRequests("group/app")
	if len(mrs) != 1 || mrs[0].Title != "Update "+repo+":2.25.0 Docker digest to "+b.Digest[7:14] ||
		!strings.Contains(mrs[0].Description, "Nothing on the runner hosts waits for this merge") {
		t.Fatalf("merge requests %+v", mrs)
	}
	ci, err := e.emu.File("group/app", mrs[0].SourceBranch, ".gitlab-ci.yml")
	if err != nil || string(ci) != "build:\n  image: "+repo+":2.25.0@"+b.Digest+"\n" {
		t.Errorf("proposed file %q (%v)", ci, err)
	}

	// The daemon holds the state dir now: check asks it.
	e.serve(t, stager)
	cfg := e.cfg
	cfg.Server.Listen = strings.TrimPrefix(e.base, "http://")
	out.Reset()
	if err := checkSeeding(t.Context(), cfg, slog.New(slog.DiscardHandler), stager, time.Now(), &out); err != nil {
		t.Fatalf("check next to the daemon: %v\n%s", err, out.String())
	}
	for _, want := range []string{"pass:       run by the daemon at " + cfg.Server.Listen + " (POST /resync?watch=1)", "digest:     " + b.Digest, "group/app: unchanged !1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	cfg.Server.ResyncToken = ""
	if err := checkSeeding(t.Context(), cfg, slog.New(slog.DiscardHandler), stager, time.Now(), &out); err == nil || !strings.Contains(err.Error(), "set HYDRAFY_RESYNC_TOKEN") {
		t.Errorf("check next to the daemon without the resync token: %v", err)
	}
}
