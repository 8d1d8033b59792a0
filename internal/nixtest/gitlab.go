package nixtest

import (
	"net/http/httptest"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
)

// GitLab is the GitLab emulator served on loopback, with a token for the
// bot user.
type GitLab struct {
	Emu   *gitlabemu.Server
	URL   string // the instance's base URL (the API is under /api/v4)
	Token string // the bot's token
}

// BotToken is the token NewGitLab gives the bot user, hydrafy-bot.
const BotToken = "glpat-hydrafy"

// NewGitLab starts the emulator with opts, closed with the test, and
// gives the bot user hydrafy-bot the token BotToken.
func NewGitLab(t testing.TB, opts gitlabemu.Options) *GitLab {
	t.Helper()
	emu := gitlabemu.New(opts)
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { ts.Close(); emu.Close() })
	emu.AddToken(BotToken, "hydrafy-bot")
	return &GitLab{Emu: emu, URL: ts.URL, Token: BotToken}
}

// Client returns a client of the real client library as the bot, with
// fast retries.
func (g *GitLab) Client(t testing.TB) *gitlab.Client {
	t.Helper()
	gl, err := gitlab.NewClient(g.Token, gitlab.WithBaseURL(g.URL+"/api/v4"),
		gitlab.WithCustomRetryWaitMinMax(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return gl
}

// Project adds a project with files on its default branch main and
// returns its id.
func (g *GitLab) Project(t testing.TB, path string, files map[string]string) int64 {
	t.Helper()
	id, err := g.Emu.AddProject(path, "main", files)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
