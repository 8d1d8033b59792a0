package propose

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
)

const botToken = "glpat-bot"

func digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func target(c byte) Target {
	return Target{Image: "nixos/nix", Tag: "latest", Digest: digest(c), Platforms: []string{"linux/amd64", "linux/arm64"},
		Created: time.Date(2026, 11, 1, 12, 30, 0, 0, time.UTC), NixVersion: "2.31.2"}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type env struct {
	emu *gitlabemu.Server
	url string
	gl  *gitlab.Client
}

func newEnv(t *testing.T, projects map[string]map[string]string) *env {
	t.Helper()
	emu := gitlabemu.New(gitlabemu.Options{})
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { ts.Close(); emu.Close() })
	emu.AddToken(botToken, "hydrafy-bot")
	emu.AddUser("alice", "Alice", "alice@example.com")
	for path, files := range projects {
		if _, err := emu.AddProject(path, "main", files); err != nil {
			t.Fatal(err)
		}
	}
	return &env{emu: emu, url: ts.URL, gl: client(t, ts.URL, botToken)}
}

func client(t *testing.T, url, token string) *gitlab.Client {
	t.Helper()
	// The client's own retries stay on; only their pauses are shortened.
	fast := func(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return time.Millisecond }
	gl, err := gitlab.NewClient(token, gitlab.WithBaseURL(url+"/api/v4"), gitlab.WithCustomBackoff(fast))
	if err != nil {
		t.Fatal(err)
	}
	return gl
}

// actions maps project path → action, for compact comparisons.
func actions(r Report) map[string]Action {
	out := map[string]Action{}
	for _, p := range r.Projects {
		out[p.Path] = p.Action
	}
	return out
}

func (e *env) pass(t *testing.T, p *Proposer, tg Target, st State) (Report, State, []gitlabemu.Request) {
	t.Helper()
	e.emu.ResetRequests()
	rep, next, err := p.Pass(context.Background(), tg, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range rep.Projects {
		t.Logf("%s", pr)
	}
	var writes []gitlabemu.Request
	for _, w := range e.emu.Writes() {
		// team/locked refuses every write; retrying it each pass is right.
		if !strings.HasPrefix(w.Path, "projects/team%2Flocked/") {
			writes = append(writes, w)
		}
	}
	return rep, next, writes
}

// openMRs returns the open merge requests of project.
func (e *env) openMRs(project string) []gitlabemu.MR {
	var out []gitlabemu.MR
	for _, mr := range e.emu.MergeRequests(project) {
		if mr.State == "opened" {
			out = append(out, mr)
		}
	}
	return out
}

// checkPinned checks that branch pins every reference of nixos/nix in the
// files to d, and that the content is exactly pin.Rewrite of main's.
func (e *env) checkPinned(t *testing.T, project, branch string, files []string, d string) {
	t.Helper()
	for _, f := range files {
		orig, err := e.emu.File(project, "main", f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.emu.File(project, branch, f)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := pin.Rewrite([]byte(orig), pin.Options{Image: "nixos/nix", Digest: d, Tag: "latest"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s %s@%s (-want +got):\n%s", project, f, branch, diff)
		}
		refs, _ := pin.References([]byte(got), "nixos/nix")
		for _, r := range refs {
			if r.Digest != d {
				t.Errorf("%s %s line %d: %s not at %s", project, f, r.Line, r.Raw, d)
			}
		}
	}
}

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
	const branch = "hydrafy/nixos-nix"
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
	wantMR := gitlabemu.MR{IID: 1, Title: "Pin nixos/nix to latest@sha256:11111111", State: "opened", SourceBranch: branch,
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
	if len(mrs) != 1 || mrs[0].IID != 1 || mrs[0].Title != "Pin nixos/nix to latest@sha256:22222222" || !strings.Contains(mrs[0].Description, digest('2')) {
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
	if mr := e.openMRs("team/app")[0]; len(mr.Notes) != 1 || !strings.Contains(mr.Notes[0], digest('3')) || !strings.Contains(mr.Title, "22222222") {
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
	head := e.emu.Branch("g/a", "hydrafy/nixos-nix")
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

func TestBranchName(t *testing.T) {
	tests := map[string]string{
		"nixos/nix":                        "hydrafy/nixos-nix",
		"registry.example.com:5000/ci/Nix": "hydrafy/registry.example.com-5000-ci-nix",
		"ghcr.io/nixos/nix":                "hydrafy/ghcr.io-nixos-nix",
		"weird..name/x.lock":               "hydrafy/weird.name-x",
	}
	for in, want := range tests {
		if got := BranchName("hydrafy/", in); got != want {
			t.Errorf("BranchName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescriptionGolden(t *testing.T) {
	files := []fileChange{
		{Path: ".gitlab-ci.yml", Refs: 4, Changed: 4, Old: []string{"", digest('0')}},
		{Path: "ci/check.yml", Refs: 3, Changed: 1, Old: []string{""}},
	}
	tests := []struct {
		name string
		t    Target
	}{
		{"full", target('1')},
		{"minimal", Target{Image: "nixos/nix", Digest: digest('1')}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Title(tt.t) + "\n\n" + Description(tt.t, files)
			path := "testdata/description-" + tt.name + ".golden.md"
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
				t.Errorf("description (-want +got):\n%s", diff)
			}
			if d := proposedDigest(got); d != tt.t.Digest {
				t.Errorf("marker digest %q", d)
			}
		})
	}
}

func cmpIgnore(fields ...string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		for _, f := range fields {
			if p.Last().String() == "."+f {
				return true
			}
		}
		return false
	}, cmp.Ignore())
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
	if len(e.emu.MergeRequests("g/a")) != 0 || e.emu.Branch("g/a", "hydrafy/nixos-nix") != "" {
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
	head := e.emu.Branch("g/a", "hydrafy/nixos-nix")

	// An unrelated change on main: the proposal stays as it is.
	if _, err := e.emu.Push("g/a", "main", "alice", "docs", map[string]string{"README": "b\n"}); err != nil {
		t.Fatal(err)
	}
	rep, st, writes := e.pass(t, p, target('1'), st)
	if len(writes) != 0 || rep.Projects[0].Action != Unchanged || e.emu.Branch("g/a", "hydrafy/nixos-nix") != head {
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
	e.checkPinned(t, "g/a", "hydrafy/nixos-nix", []string{".gitlab-ci.yml"}, digest('1'))
}
