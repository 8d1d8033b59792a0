package propose

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/config"
)

func TestMaxOpen(t *testing.T) {
	projects := map[string]map[string]string{}
	var cfg []config.Project
	for _, name := range []string{"g/a", "g/b", "g/c"} {
		projects[name] = map[string]string{".gitlab-ci.yml": "image: nixos/nix\n"}
		cfg = append(cfg, config.Project{Path: name, Files: []string{".gitlab-ci.yml"}})
	}
	e := newEnv(t, projects)
	p := New(e.gl, Options{Projects: cfg, Propose: config.Propose{MaxOpen: 2}}, nil)
	rep, st, _ := e.pass(t, p, target('1'), State{})
	if diff := cmp.Diff(map[string]Action{"g/a": Opened, "g/b": Opened, "g/c": Capped}, actions(rep)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if _, err := e.emu.Merge("g/a", 1, "alice"); err != nil {
		t.Fatal(err)
	}
	rep, _, _ = e.pass(t, p, target('1'), st)
	if diff := cmp.Diff(map[string]Action{"g/a": UpToDate, "g/b": Unchanged, "g/c": Opened}, actions(rep)); diff != "" {
		t.Errorf("after a merge (-want +got):\n%s", diff)
	}
}

func TestAutomerge(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}, Propose: config.Propose{Automerge: true}}, nil)
	rep, st, _ := e.pass(t, p, target('1'), State{})
	if pr := rep.Projects[0]; pr.Action != Opened || pr.AutoMerge != "waiting for a pipeline" {
		t.Fatalf("first pass: %s", pr)
	}
	rep, st, writes := e.pass(t, p, target('1'), st)
	if len(writes) != 0 || rep.Projects[0].AutoMerge != "waiting for a pipeline" {
		t.Fatalf("no pipeline yet: %s, writes %v", rep.Projects[0], writes)
	}
	head := e.emu.Branch("g/a", "hydrafy/nixos-nix-digest")
	if _, err := e.emu.SetPipeline("g/a", head, "running"); err != nil {
		t.Fatal(err)
	}
	rep, st, _ = e.pass(t, p, target('1'), st)
	if rep.Projects[0].AutoMerge != "set" || !e.emu.MergeRequests("g/a")[0].AutoMerge {
		t.Fatalf("pipeline running: %s", rep.Projects[0])
	}
	rep, st, writes = e.pass(t, p, target('1'), st)
	if len(writes) != 0 {
		t.Errorf("auto-merge set twice: %v", writes)
	}
	if _, err := e.emu.SetPipeline("g/a", head, "success"); err != nil {
		t.Fatal(err)
	}
	if mr := e.emu.MergeRequests("g/a")[0]; mr.State != "merged" {
		t.Fatalf("after pipeline success: %s", mr.State)
	}
	rep, _, _ = e.pass(t, p, target('1'), st)
	if rep.Projects[0].Action != UpToDate {
		t.Errorf("after auto-merge: %s", rep.Projects[0])
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{
		"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"},
		"g/b": {".gitlab-ci.yml": "image: nixos/nix\n"},
	})
	cfg := []config.Project{{Path: "g/a"}, {Path: "g/b"}}
	tests := []struct {
		name   string
		setup  func()
		token  string
		failed map[string]string // project → error fragment
		ok     string
	}{
		{"server errors", func() { e.emu.FailNext("", "projects/g/a", 500, 1000) }, botToken,
			map[string]string{"g/a": "answered 500 after retries"}, "g/b"},
		{"rate limit", func() { e.emu.FailNext("", "projects/g/a", 429, 1000) }, botToken,
			map[string]string{"g/a": "answered 429 after retries"}, "g/b"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			tg := target(byte('1' + i))
			p := New(client(t, e.url, tt.token), Options{Projects: cfg}, nil)
			rep, _, err := p.Pass(context.Background(), tg, State{})
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range rep.Projects {
				frag, fail := tt.failed[pr.Path]
				switch {
				case fail && (pr.Err == nil || !strings.Contains(pr.Err.Error(), frag)):
					t.Errorf("%s: %v, want error with %q", pr.Path, pr.Err, frag)
				case !fail && pr.Err != nil:
					t.Errorf("%s: %v", pr.Path, pr.Err)
				}
			}
			e.emu.ClearFaults()
		})
	}
}

func TestScope(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	e.emu.AddToken("glpat-read", "reader", "read_api")
	p := New(client(t, e.url, "glpat-read"), Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	rep, _, err := p.Pass(context.Background(), target('1'), State{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Projects[0].Err; err == nil || !strings.Contains(err.Error(), "api scope") {
		t.Errorf("read-only token: %v", err)
	}
	if len(e.emu.MergeRequests("g/a")) != 0 {
		t.Error("an MR was opened with a read-only token")
	}
}

func TestLockedProjectRetriesEachPass(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	if err := e.emu.ReadOnly("g/a", "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	for range 2 {
		rep, _, err := p.Pass(context.Background(), target('1'), State{})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Projects[0].Err; err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("read-only member: %v", err)
		}
	}
	if len(e.emu.MergeRequests("g/a")) != 0 || e.emu.Branch("g/a", "hydrafy/nixos-nix-digest") != "" {
		t.Error("a refused write changed the project")
	}
}

func TestInvalidTarget(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	for _, tg := range []Target{
		{Image: "nixos/nix", Digest: "sha256:short"},
		{Image: "", Digest: digest('1')},
		{Image: "nixos/nix", Tag: "bad tag", Digest: digest('1')},
	} {
		e.emu.ResetRequests()
		if _, _, err := p.Pass(context.Background(), tg, State{}); err == nil {
			t.Errorf("%+v: no error", tg)
		}
		if n := len(e.emu.Requests()); n != 0 {
			t.Errorf("%+v: %d requests", tg, n)
		}
	}
}

func TestDefaultBranchMoves(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n", "README": "a\n"}})
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	_, st, _ := e.pass(t, p, target('1'), State{})
	head := e.emu.Branch("g/a", "hydrafy/nixos-nix-digest")

	// An unrelated change on main: the proposal stays as it is.
	if _, err := e.emu.Push("g/a", "main", "alice", "docs", map[string]string{"README": "b\n"}); err != nil {
		t.Fatal(err)
	}
	rep, st, writes := e.pass(t, p, target('1'), st)
	if len(writes) != 0 || rep.Projects[0].Action != Unchanged || e.emu.Branch("g/a", "hydrafy/nixos-nix-digest") != head {
		t.Errorf("unrelated change: %s, writes %v", rep.Projects[0], writes)
	}

	// The CI file changes on main: the branch is rebuilt from the new head.
	if _, err := e.emu.Push("g/a", "main", "alice", "ci", map[string]string{".gitlab-ci.yml": "image: nixos/nix\nvariables: {A: b}\n"}); err != nil {
		t.Fatal(err)
	}
	rep, _, _ = e.pass(t, p, target('1'), st)
	if rep.Projects[0].Action != Updated {
		t.Fatalf("CI change: %s", rep.Projects[0])
	}
	e.checkPinned(t, "g/a", "hydrafy/nixos-nix-digest", []string{".gitlab-ci.yml"}, digest('1'))
}

// TestBranchResetAfterHumanPush follows the advice of the comment: deleting
// the branch lets the next pass rebuild it and update the same MR.
func TestBranchResetAfterHumanPush(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	p := New(e.gl, Options{Projects: []config.Project{{Path: "g/a"}}}, nil)
	const branch = "hydrafy/nixos-nix-digest"
	_, st, _ := e.pass(t, p, target('1'), State{})
	if _, err := e.emu.Push("g/a", branch, "alice", "mine", map[string]string{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	rep, st, _ := e.pass(t, p, target('2'), st)
	if rep.Projects[0].Action != Commented {
		t.Fatalf("human push: %s", rep.Projects[0])
	}
	if _, err := e.gl.Branches.DeleteBranch("g/a", branch); err != nil {
		t.Fatal(err)
	}
	rep, _, _ = e.pass(t, p, target('2'), st)
	mrs := e.emu.MergeRequests("g/a")
	if rep.Projects[0].Action != Updated || len(mrs) != 1 || mrs[0].State != "opened" || !strings.Contains(mrs[0].Title, "2222222") {
		t.Fatalf("after reset: %s, %+v", rep.Projects[0], mrs)
	}
	e.checkPinned(t, "g/a", branch, []string{".gitlab-ci.yml"}, digest('2'))
}

func TestNewClient(t *testing.T) {
	e := newEnv(t, map[string]map[string]string{"g/a": {".gitlab-ci.yml": "image: nixos/nix\n"}})
	for _, url := range []string{e.url, e.url + "/", e.url + "/api/v4"} {
		gl, err := NewClient(url, botToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := gl.Projects.GetProject("g/a", nil); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
	if _, err := NewClient("", botToken); err == nil {
		t.Error("no error for an empty URL")
	}
}
