package propose

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
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

func newEnv(t testing.TB, projects map[string]map[string]string) *env {
	t.Helper()
	g := nixtest.NewGitLab(t, gitlabemu.Options{})
	g.Emu.AddToken(botToken, "hydrafy-bot")
	g.Emu.AddUser("alice", "Alice", "alice@example.com")
	for path, files := range projects {
		g.Project(t, path, files)
	}
	return &env{emu: g.Emu, url: g.URL, gl: client(t, g.URL, botToken)}
}

func client(t testing.TB, url, token string) *gitlab.Client {
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
		want, _, err := pin.Rewrite([]byte(orig), pin.Options{Image: "nixos/nix", Digest: d})
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
