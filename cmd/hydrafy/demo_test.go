package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// TestDemoCycle runs the demo's whole cycle non-interactively and checks
// the end state with real parts: the live store verified by Nix and
// holding both releases, the MR merged, the stand-in runner restarted
// with its config.toml pinned to the new digest, /status reporting success.
func TestDemoCycle(t *testing.T) {
	checkDemoCycle(t, false, "seeding the live store", "MR !1 in demo/webapp", "merge webhook", "commit", "runner downtime")
}

// TestDemoCycleLive runs `hydrafy demo --live`: the same cycle, but the
// new release is merged while the stand-in serves one long job that holds
// the store open; the runner is never stopped and the job never aborted.
func TestDemoCycleLive(t *testing.T) {
	checkDemoCycle(t, true, "one long job", "live: runner downtime 0.00s, drain 0.00s, queue stall 0.00s", "job #1 ran through the whole upgrade: 1 running, 0 done, 0 aborted")
}

// checkDemoCycle runs the demo's cycle (--live if live) to its exit, checks its
// end state and that its output says each of want.
func checkDemoCycle(t *testing.T, live bool, want ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var cycle *demoCycle
	var out, errb bytes.Buffer
	err := demoRun(ctx, demoOptions{
		dir: t.TempDir(), listen: "127.0.0.1:0", exit: true, live: live,
		runner: []string{os.Args[0], "-standin"},
		done: func(c *demoCycle) {
			cycle = c
			checkDemoEnd(t, c, live)
		},
	}, &out, &errb)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo (live %v): %v\nstderr: %s", live, err, errb.String())
	}
	if cycle == nil {
		t.Fatal("the demo finished without reporting its cycle")
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("demo output lacks %q", w)
		}
	}
	// At exit the demo stops its stand-in runner.
	if s, err := standin.ReadStatus(filepath.Join(cycle.env.RunnerDir(), "status.json")); err != nil || standin.Alive(s.PID) {
		t.Errorf("stand-in runner still alive after the demo (%+v, %v)", s, err)
	}
}

func checkDemoEnd(t *testing.T, c *demoCycle, live bool) {
	t.Helper()
	env := c.env
	a, b := env.Releases[0], env.Releases[1]

	// The store: verified by Nix, holding exactly both releases' paths.
	got := nixtest.Verify(t, env.StoreDir())
	want := []string{c.cached}
	for _, v := range []string{a.Version, b.Version} {
		spec := synth.Release(synth.ReleaseOptions{Version: v, Paths: 40, Shared: 34, FilesPerPath: 12, FileSize: 4096})
		want = nixtest.Union(want, spec.StorePaths())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live store paths (-want +got):\n%s", diff)
	}
	if refs := nixtest.References(t, env.StoreDir(), c.cached); len(refs) != 1 || !strings.Contains(refs[0], "lib000") {
		t.Errorf("cached build's references %v, want the release's lib000", refs)
	}

	// The MR in the first project is merged; its default branch pins B.
	mrs := env.GitLab.MergeRequests(env.Projects[0])
	if len(mrs) != 1 || mrs[0].State != "merged" {
		t.Errorf("MRs of %s: %+v, want one merged", env.Projects[0], mrs)
	}
	ci, err := env.GitLab.File(env.Projects[0], "main", ".gitlab-ci.yml")
	if err != nil || !strings.Contains(ci, "@"+b.Digest) {
		t.Errorf("%s's default branch does not pin %s (%v):\n%s", env.Projects[0], b.Digest, err, ci)
	}

	// Drained: the runner was stopped and started again. Live: the same
	// process served the same job throughout. Either way it runs with the
	// new pin.
	switch {
	case !live && (c.runnerAfter.PID == c.runnerBefore.PID || !standin.Alive(c.runnerAfter.PID)):
		t.Errorf("runner pid %d → %d (alive %v): not restarted", c.runnerBefore.PID, c.runnerAfter.PID, standin.Alive(c.runnerAfter.PID))
	case live && (c.runnerAfter.PID != c.runnerBefore.PID || c.runnerAfter.JobsRunning != 1 || c.runnerAfter.JobsDone != 0 || c.runnerAfter.JobsAborted != 0):
		t.Errorf("live: runner %+v after %+v; want the same process still on its first job", c.runnerAfter, c.runnerBefore)
	}
	if live && (c.proposal == nil || c.proposal.Mode != "live" || c.proposal.DowntimeSeconds != 0 || c.proposal.DrainSeconds != 0) {
		t.Errorf("live: the proposal's pass %+v; want a live merge with 0 s downtime and drain", c.proposal)
	}
	wantImage := env.Image() + "@" + b.Digest
	toml, err := os.ReadFile(c.cfg.Runner.ConfigFile)
	if err != nil || !strings.Contains(string(toml), `image = "`+wantImage+`"`) {
		t.Errorf("config.toml does not pin %s (%v):\n%s", wantImage, err, toml)
	}

	// /status reports success: the proposal's pass seeded B (config.toml
	// still pinning A), the merge's pass pinned B without a restart.
	if c.proposal == nil || c.proposal.Result != "ok" || len(c.proposal.Seeded) != 1 || c.proposal.Seeded[0] != b.Digest {
		t.Errorf("the proposal's pass: %+v, want ok seeding %s", c.proposal, b.Digest)
	}
	if c.proposal != nil && c.proposal.Image != env.Image()+"@"+a.Digest {
		t.Errorf("the proposal's pass pinned config.toml to %s, want %s until the merge", c.proposal.Image, a.Digest)
	}
	if c.runnerAfter.Image != wantImage {
		t.Errorf("the runner runs with image %q, want %q", c.runnerAfter.Image, wantImage)
	}
	if c.merged == nil || c.merged.Result != "ok" || c.merged.Image != wantImage || c.merged.DowntimeSeconds != 0 {
		t.Errorf("the merge's pass: %+v, want ok pinning %s with no downtime", c.merged, wantImage)
	}
	if c.status.Last == nil || (c.status.Last.Result != "ok" && c.status.Last.Result != "noop") {
		t.Fatalf("/status last run: %+v", c.status.Last)
	}
	if c.status.Tracked != b.Digest {
		t.Errorf("/status tracked digest %q, want %q", c.status.Tracked, b.Digest)
	}
}
