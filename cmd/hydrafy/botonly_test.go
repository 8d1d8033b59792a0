package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestServeBotOnly: a bot-only host (reconcile.enabled = false, no store,
// no runner, no webhook secret) watches the registry and opens the merge
// request; its /status says so; it has no webhook route and no /resync.
// `hydrafy reconcile` refuses its config in one line.
func TestServeBotOnly(t *testing.T) {
	reg := nixtest.Registry(t)
	rel := nixtest.PushRelease(t, reg, "2.25.0", "latest")
	repo := reg + "/nixos/nix"
	emu := gitlabemu.New(gitlabemu.Options{})
	gts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { gts.Close(); emu.Close() })
	emu.AddToken(e2eBotToken, "hydrafy-bot")
	if _, err := emu.AddProject("group/app", "main", map[string]string{".gitlab-ci.yml": "build:\n  image: " + repo + ":latest\n"}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	path := filepath.Join(dir, "hydrafy.toml")
	cfg := fmt.Sprintf("[server]\nlisten = %q\nstate_dir = %q\n\n[gitlab]\nurl = %q\n\n[watch]\nimage = %q\nsettle = \"0s\"\nschedule = \"@every 1s\"\n\n[[projects]]\npath = \"group/app\"\n\n[reconcile]\nenabled = false\n",
		addr, filepath.Join(dir, "state"), gts.URL, repo)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HYDRAFY_GITLAB_TOKEN", e2eBotToken)
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", "")

	var stderr strings.Builder
	code := run(context.Background(), []string{"reconcile", "--config", path}, &strings.Builder{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "bot-only host") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("hydrafy reconcile on a bot-only config: exit %d, %q", code, stderr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	var logs syncBuffer
	go func() { served <- run(ctx, []string{"serve", "--config", path}, &logs, &logs) }()
	defer func() {
		cancel()
		if code := <-served; code != 0 {
			t.Errorf("serve exited %d: %s", code, logs.String())
		}
		if strings.Contains(logs.String(), e2eBotToken) {
			t.Error("the token reached the log")
		}
	}()
	base := "http://" + addr
	var st fleetStatus
	waitFor(t, "the bot's merge request in /status", func() bool {
		resp, err := http.Get(base + "/status")
		if err != nil {
			return false // not listening yet
		}
		defer resp.Body.Close()
		st = fleetStatus{}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st.Watch.Result != nil && len(st.Watch.Result.MergeRequests) == 1 && st.Watch.Result.MergeRequests[0].Action == "opened"
	})
	if st.Role != "bot" || st.Webhooks || st.Watch.Result.Digest != rel.Digest {
		t.Errorf("status: role %q webhooks %v digest %s, want bot, false, %s", st.Role, st.Webhooks, st.Watch.Result.Digest, rel.Digest)
	}
	if mrs := emu.MergeRequests("group/app"); len(mrs) != 1 || !strings.Contains(mrs[0].Description, rel.Digest) {
		t.Errorf("merge requests %+v, want one proposing %s", mrs, rel.Digest)
	}
	for _, p := range []string{"/webhooks/gitlab", "/resync"} {
		resp, err := http.Post(base+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "reconciler.json")); !os.IsNotExist(err) {
		t.Errorf("a bot-only host wrote reconciler state: %v", err)
	}
}

// TestCheckOnReconcilerHost: `hydrafy check` proposes only where the bot
// runs; --dry-run still reports what the watcher sees.
func TestCheckOnReconcilerHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hydrafy.toml")
	if err := os.WriteFile(path, []byte("[gitlab]\nurl = \"http://127.0.0.1:1\"\n\n[bot]\nenabled = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "glpat-reconciler")
	var stderr strings.Builder
	code := run(context.Background(), []string{"check", "--config", path}, &strings.Builder{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "bot.enabled = false") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("check on a reconciler host: exit %d, %q; want 1 and one line naming bot.enabled", code, stderr.String())
	}
}
