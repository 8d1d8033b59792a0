package gitlabemu

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

func TestAuth(t *testing.T) {
	emu, ts, gl := newTestServer(t)
	const runnerToken, readRunnerToken = "glpat-runner", "glpat-read-runner"
	emu.AddToken(runnerToken, "runner-admin", "manage_runner")
	emu.AddToken(readRunnerToken, "reconciler", "read_api", "manage_runner")
	tests := []struct {
		name   string
		client *gitlab.Client
		write  bool
		want   int
	}{
		{"no token", newClient(t, ts.URL, ""), false, http.StatusUnauthorized},
		{"wrong token", newClient(t, ts.URL, "nope"), false, http.StatusUnauthorized},
		{"read_api reads", newClient(t, ts.URL, readToken), false, http.StatusOK},
		{"read_api writes", newClient(t, ts.URL, readToken), true, http.StatusForbidden},
		{"api writes", gl, true, http.StatusCreated},
		{"manage_runner writes no branch", newClient(t, ts.URL, runnerToken), true, http.StatusForbidden},
		{"manage_runner reads no project", newClient(t, ts.URL, runnerToken), false, http.StatusForbidden},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *gitlab.Response
			var err error
			if tt.write {
				_, resp, err = tt.client.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{
					Branch: gitlab.Ptr("b" + string(rune('a'+i))), Ref: gitlab.Ptr("main")})
			} else {
				_, resp, err = tt.client.Projects.GetProject("group/app", nil)
			}
			if status(resp) != tt.want {
				t.Fatalf("status %d, want %d (err %v)", status(resp), tt.want, err)
			}
			if tt.want == http.StatusForbidden && !strings.Contains(err.Error(), "insufficient_scope") {
				t.Errorf("403 error %v does not name insufficient_scope", err)
			}
		})
	}
	// manage_runner reads and pauses runners by id, alone or next to read_api.
	id := emu.AddRunner("nix host", "glrt-auth")
	for _, tok := range []string{runnerToken, readRunnerToken} {
		rc := newClient(t, ts.URL, tok)
		if _, resp, err := rc.Runners.UpdateRunnerDetails(id, &gitlab.UpdateRunnerDetailsOptions{Paused: gitlab.Ptr(true)}); status(resp) != http.StatusOK {
			t.Errorf("%s pausing a runner: status %d, %v", tok, status(resp), err)
		}
		if _, resp, err := rc.Runners.GetRunnerDetails(id); status(resp) != http.StatusOK {
			t.Errorf("%s reading a runner: status %d, %v", tok, status(resp), err)
		}
	}
	if _, resp, err := newClient(t, ts.URL, readRunnerToken).Projects.GetProject("group/app", nil); status(resp) != http.StatusOK {
		t.Errorf("read_api+manage_runner reading a project: status %d, %v", status(resp), err)
	}
	if _, resp, _ := newClient(t, ts.URL, readToken).Runners.UpdateRunnerDetails(id, &gitlab.UpdateRunnerDetailsOptions{Paused: gitlab.Ptr(false)}); status(resp) != http.StatusForbidden {
		t.Errorf("read_api pausing a runner: status %d, want 403", status(resp))
	}

	// Bearer works like PRIVATE-TOKEN.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v4/projects/1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bearer: status %d", resp.StatusCode)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	_, ts, _ := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v4/projects/1/wikis", nil)
	req.Header.Set("PRIVATE-TOKEN", testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "404") {
		t.Errorf("status %d body %s", resp.StatusCode, b)
	}
}

func TestFaults(t *testing.T) {
	emu, _, gl := newTestServer(t)
	emu.FailNext(http.MethodGet, "projects/group/app", http.StatusBadGateway, 1)
	if _, _, err := gl.Projects.GetProject("group/app", nil); err != nil {
		t.Errorf("one 502 was not retried by the client: %v", err)
	}
	emu.FailNext("", "projects/group/app", http.StatusTooManyRequests, 100)
	_, resp, err := gl.Projects.GetProject("group/app", nil, gitlab.WithContext(context.Background()))
	if status(resp) != http.StatusTooManyRequests || err == nil {
		var ee *gitlab.ErrorResponse
		t.Errorf("status %d err %v (%v)", status(resp), err, errors.As(err, &ee))
	}
}

func TestReadOnlyMember(t *testing.T) {
	emu, _, gl := newTestServer(t)
	if err := emu.ReadOnly("group/app", "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gl.Projects.GetProject("group/app", nil); err != nil {
		t.Errorf("read: %v", err)
	}
	_, resp, _ := gl.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{Branch: gitlab.Ptr("x"), Ref: gitlab.Ptr("main")})
	if status(resp) != http.StatusForbidden {
		t.Errorf("write: status %d, want 403", status(resp))
	}
}

func TestUnknownEndpointIsLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	emu := New(Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))})
	ts := httptest.NewServer(emu.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/v4/nonsense/here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(buf.String(), "/api/v4/nonsense/here") {
		t.Errorf("status %d, log %q", resp.StatusCode, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
