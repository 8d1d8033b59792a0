package propose

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/config"
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
