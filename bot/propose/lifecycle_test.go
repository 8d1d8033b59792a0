package propose

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
)

func TestLifecycle(t *testing.T) {
	app := map[string]string{".gitlab-ci.yml": read(t, "app.gitlab-ci.yml"), "ci/check.yml": read(t, "app.check.yml")}
	lib := map[string]string{".gitlab-ci.yml": "image: \"docker.io/nixos/nix:2.24.10@" + digest('0') + "\"\n"}
	e := newEnv(t, map[string]map[string]string{
		"team/app": app, "team/lib": lib,
		"team/other":  {".gitlab-ci.yml": "image: alpine:3\n"},
		"team/locked": {".gitlab-ci.yml": "image: nixos/nix\n"},
	})
	if err := e.emu.ReadOnly("team/locked", "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Projects: []config.Project{
			{Path: "team/app", Files: []string{".gitlab-ci.yml", "ci/check.yml", "ci/absent.yml"}, Labels: []string{"nix"}, Assignees: []string{"alice", "nobody"}},
			{Path: "team/lib", Files: []string{".gitlab-ci.yml"}},
			{Path: "team/other"},
			{Path: "team/gone"},
			{Path: "team/locked"},
		},
		Propose: config.Propose{BranchPrefix: "hydrafy/", MaxOpen: 10, Labels: []string{"dependencies"}},
	}
	p := New(e.gl, opts, slog.New(slog.DiscardHandler))
	const branch = "hydrafy/nixos-nix-digest"
	appFiles := []string{".gitlab-ci.yml", "ci/check.yml"}

	// First proposal.
	rep, st, _ := e.pass(t, p, target('1'), State{})
	want := map[string]Action{"team/app": Opened, "team/lib": Opened, "team/other": NoReferences, "team/gone": Failed, "team/locked": Failed}
	if diff := cmp.Diff(want, actions(rep)); diff != "" {
		t.Fatalf("first pass (-want +got):\n%s", diff)
	}
	e.checkPinned(t, "team/app", branch, appFiles, digest('1'))
	e.checkPinned(t, "team/lib", branch, []string{".gitlab-ci.yml"}, digest('1'))
	mrs := e.openMRs("team/app")
	if len(mrs) != 1 {
		t.Fatalf("%d open MRs in team/app", len(mrs))
	}
	wantMR := gitlabemu.MR{IID: 1, Title: "Update nixos/nix Docker digest to 1111111", State: "opened", SourceBranch: branch,
		TargetBranch: "main", Labels: []string{"dependencies", "nix"}, Assignees: []string{"alice"}}
	if diff := cmp.Diff(wantMR, mrs[0], ignoreMRDetail); diff != "" {
		t.Errorf("MR (-want +got):\n%s", diff)
	}
	for _, pr := range rep.Projects {
		switch pr.Path {
		case "team/app":
			if diff := cmp.Diff([]string{"ci/absent.yml"}, pr.Missing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if len(pr.Warnings) != 1 || !strings.Contains(pr.Warnings[0], "nobody") {
				t.Errorf("warnings %v", pr.Warnings)
			}
		case "team/gone":
			if !strings.Contains(pr.Err.Error(), "404") {
				t.Errorf("gone: %v", pr.Err)
			}
		case "team/locked":
			if !strings.Contains(pr.Err.Error(), "403") || !strings.Contains(pr.Err.Error(), "Developer") {
				t.Errorf("locked: %v", pr.Err)
			}
		}
	}

	// Nothing new: no writes at all.
	rep, st, writes := e.pass(t, p, target('1'), st)
	if len(writes) != 0 {
		t.Errorf("idempotent pass wrote: %v", writes)
	}
	if got := actions(rep)["team/app"]; got != Unchanged {
		t.Errorf("app: %s", got)
	}

	// A newer digest updates the branch and the MR in place.
	rep, st, _ = e.pass(t, p, target('2'), st)
	if got := actions(rep); got["team/app"] != Updated || got["team/lib"] != Updated {
		t.Fatalf("newer digest: %v", got)
	}
	e.checkPinned(t, "team/app", branch, appFiles, digest('2'))
	mrs = e.openMRs("team/app")
	if len(mrs) != 1 || mrs[0].IID != 1 || mrs[0].Title != "Update nixos/nix Docker digest to 2222222" || !strings.Contains(mrs[0].Description, digest('2')) {
		t.Fatalf("after update: %+v", mrs)
	}

	// A human pushes to app's branch: a newer digest gets a comment, once.
	humanHead, err := e.emu.Push("team/app", branch, "alice", "tweak", map[string]string{"notes.txt": "mine\n"})
	if err != nil {
		t.Fatal(err)
	}
	rep, st, _ = e.pass(t, p, target('3'), st)
	if got := actions(rep); got["team/app"] != Commented || got["team/lib"] != Updated {
		t.Fatalf("human push: %v", got)
	}
	if e.emu.Branch("team/app", branch) != humanHead {
		t.Error("the proposer force-pushed over a human's commit")
	}
	if mr := e.openMRs("team/app")[0]; len(mr.Notes) != 1 || !strings.Contains(mr.Notes[0], digest('3')) || !strings.Contains(mr.Title, "2222222") {
		t.Errorf("app MR after human push: %+v", mr)
	}
	rep, st, writes = e.pass(t, p, target('3'), st)
	if len(writes) != 0 || actions(rep)["team/app"] != HumanPushed {
		t.Errorf("second pass after human push: %v, writes %v", actions(rep), writes)
	}

	// Closing lib's MR declines the digest; a newer one opens a new MR.
	libMR := e.openMRs("team/lib")[0]
	if err := e.emu.CloseMR("team/lib", libMR.IID, "alice"); err != nil {
		t.Fatal(err)
	}
	rep, st, writes = e.pass(t, p, target('3'), st)
	if actions(rep)["team/lib"] != Declined || len(writes) != 0 {
		t.Errorf("closed: %v, writes %v", actions(rep), writes)
	}
	if diff := cmp.Diff(map[string][]string{"team/lib": {digest('3')}}, st.Declined); diff != "" {
		t.Errorf("declined state (-want +got):\n%s", diff)
	}
	b, _ := st.Marshal()
	if st2, err := ParseState(b); err != nil || !cmp.Equal(st, st2) {
		t.Errorf("state round trip: %s → %+v, %v", b, st2, err)
	}
	rep, st, _ = e.pass(t, p, target('4'), st)
	if got := actions(rep); got["team/lib"] != Opened || got["team/app"] != Commented {
		t.Fatalf("newer after decline: %v", got)
	}
	newLib := e.openMRs("team/lib")
	if len(newLib) != 1 || newLib[0].IID == libMR.IID {
		t.Fatalf("lib MRs: %+v", newLib)
	}
	e.checkPinned(t, "team/lib", branch, []string{".gitlab-ci.yml"}, digest('4'))

	// Merged: nothing more to do.
	if _, err := e.emu.Merge("team/lib", newLib[0].IID, "alice"); err != nil {
		t.Fatal(err)
	}
	rep, st, writes = e.pass(t, p, target('4'), st)
	if actions(rep)["team/lib"] != UpToDate || len(writes) != 0 {
		t.Errorf("merged: %v, writes %v", actions(rep), writes)
	}
	if e.emu.Branch("team/lib", branch) != "" {
		t.Error("the merged branch was kept")
	}
}

var ignoreMRDetail = cmpIgnore("Description", "SHA", "MergeCommit", "Notes")
