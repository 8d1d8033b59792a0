package gitlabemu

import (
	"net/http/httptest"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

const (
	testToken = "glpat-test"
	readToken = "glpat-read"
)

// newTestServer starts an emulator with one project and returns it with a
// client authenticated by an api token.
func newTestServer(t *testing.T) (*Server, *httptest.Server, *gitlab.Client) {
	t.Helper()
	emu := New(Options{HookBackoff: 10 * time.Millisecond})
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { ts.Close(); emu.Close() })
	emu.AddToken(testToken, "hydrafy-bot")
	emu.AddToken(readToken, "reader", "read_api")
	if _, err := emu.AddProject("group/app", "main", map[string]string{
		".gitlab-ci.yml": "image: nixos/nix:latest\n",
		"ci/build.yml":   "build:\n  image: nixos/nix\n",
	}); err != nil {
		t.Fatal(err)
	}
	return emu, ts, newClient(t, ts.URL, testToken)
}

func newClient(t *testing.T, url, token string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(url+"/api/v4"), gitlab.WithCustomRetryWaitMinMax(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(resp *gitlab.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func mrOpts(src string) *gitlab.CreateMergeRequestOptions {
	return &gitlab.CreateMergeRequestOptions{Title: gitlab.Ptr("T " + src), SourceBranch: gitlab.Ptr(src), TargetBranch: gitlab.Ptr("main")}
}
