package propose

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
)

// TestProposalGolden opens a proposal for a digest whose release is known
// and compares the pushed file and the merge request's title and
// description with golden files: version tags name the release, latest
// and untagged references keep their form, the Dependency Proxy reference
// is pinned and the one through an unresolvable variable is listed.
func TestProposalGolden(t *testing.T) {
	ci := read(t, "app.gitlab-ci.yml") + "\nproxy:\n  image: ${CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX}/nixos/nix:2.24.10\n" +
		"mirror:\n  image: $CI_REGISTRY/mirror/nixos/nix:2.24.10\n"
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": ci}})
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	tg := target('1')
	tg.VersionTag, tg.Seeded = "2.25.0", true
	rep, _, _ := e.pass(t, p, tg, State{})
	if rep.Projects[0].Action != Opened {
		t.Fatalf("pass: %s", rep.Projects[0])
	}
	mrs := e.emu.MergeRequests("g/a")
	if len(mrs) != 1 {
		t.Fatalf("%d merge requests", len(mrs))
	}
	got, err := e.emu.File("g/a", mrs[0].SourceBranch, ".gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/app.gitlab-ci.pinned.golden.yml", got)
	golden(t, "testdata/mr-version.golden.md", mrs[0].Title+"\n\n"+mrs[0].Description)
}

// golden compares got with the file at path (UPDATE_GOLDEN=1 rewrites it).
func golden(t *testing.T, path, got string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestSupersedesOldBranchName: an open proposal from the branch hydrafy
// used before (without "-digest") is closed, with a note naming its
// successor, once the new branch's merge request is open; the next pass
// writes nothing.
func TestSupersedesOldBranchName(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	if _, err := e.emu.Push("g/a", "hydrafy/nixos-nix", "hydrafy-bot", "Pin nixos/nix\n\nHydrafy-Digest: "+digest('0'),
		map[string]string{".gitlab-ci.yml": "image: nixos/nix@" + digest('0') + "\n"}); err != nil {
		t.Fatal(err)
	}
	old, _, err := e.gl.MergeRequests.CreateMergeRequest("g/a", &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("Pin nixos/nix to sha256:00000000"), Description: gitlab.Ptr(description(target('0'), nil, nil)),
		SourceBranch: gitlab.Ptr("hydrafy/nixos-nix"), TargetBranch: gitlab.Ptr("main")})
	if err != nil {
		t.Fatal(err)
	}
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	rep, st, _ := e.pass(t, p, target('1'), State{})
	pr := rep.Projects[0]
	if pr.Action != Opened || pr.Superseded != old.IID || !strings.Contains(pr.String(), fmt.Sprintf("(closed !%d of the old branch name)", old.IID)) {
		t.Fatalf("pass: %s", pr)
	}
	var closed gitlabemu.MR
	for _, mr := range e.emu.MergeRequests("g/a") {
		if mr.IID == old.IID {
			closed = mr
		}
	}
	if closed.State != "closed" || len(closed.Notes) != 1 || !strings.Contains(closed.Notes[0], fmt.Sprintf("Superseded by !%d", pr.MR)) {
		t.Errorf("old proposal: %+v", closed)
	}
	if open := e.openMRs("g/a"); len(open) != 1 || open[0].SourceBranch != "hydrafy/nixos-nix-digest" {
		t.Errorf("open merge requests: %+v", open)
	}
	if _, next, writes := e.pass(t, p, target('1'), st); len(writes) != 0 || len(next.Declined["g/a"]) != 0 {
		t.Errorf("second pass: writes %v, declined %v", writes, next.Declined)
	}
}
