package runner

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestMain lets the test binary be the stand-in runner (nixtest.StandinMain).
func TestMain(m *testing.M) {
	nixtest.StandinMain()
	os.Exit(m.Run())
}

// standinFiles are the paths one stand-in runner uses.
type standinFiles struct{ *nixtest.Standin }

func newStandinFiles(t testing.TB) standinFiles {
	return standinFiles{nixtest.NewStandin(t, "", "")}
}

func bigLockFree(t *testing.T, store string) bool { return nixtest.BigLockFree(t, store) }

const botToken = "glpat-hydrafy"

// newGitLab starts the GitLab emulator and returns it with a client of the
// real client library.
func newGitLab(t *testing.T) (*gitlabemu.Server, *gitlab.Client) {
	t.Helper()
	gl := nixtest.NewGitLab(t, gitlabemu.Options{})
	return gl.Emu, gl.Client(t)
}

// buildHost starts the GitLab emulator with the build host's runner
// (token runnerToken) running a job of each name; it returns the
// emulator, a client, the runner's id and the jobs' ids.
func buildHost(t *testing.T, jobs ...string) (*gitlabemu.Server, *gitlab.Client, int64, []int64) {
	t.Helper()
	emu, gl := newGitLab(t)
	id := emu.AddRunner("build host", runnerToken)
	var ids []int64
	for _, name := range jobs {
		j, err := emu.StartJob(id, name)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j)
	}
	return emu, gl, id, ids
}

func newLog() (*slog.Logger, *nixtest.Buffer) { return nixtest.Log() }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newRunner is New that fails the test on an error.
func newRunner(t *testing.T, opts Options, gl *gitlab.Client, log *slog.Logger) *Runner {
	t.Helper()
	r, err := New(opts, gl, log)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
