package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// writeBotOnlyConfig writes the config of a bot-only host watching repo's
// latest tag (settle 0, every second) for projects.
func writeBotOnlyConfig(t *testing.T, path, addr, stateDir, gitlabURL, repo string, projects ...string) {
	t.Helper()
	cfg := fmt.Sprintf("[server]\nlisten = %q\nstate_dir = %q\n\n[gitlab]\nurl = %q\n\n[watch]\nimage = %q\nsettle = \"0s\"\nschedule = \"@every 1s\"\n\n",
		addr, stateDir, gitlabURL, repo)
	for _, p := range projects {
		cfg += fmt.Sprintf("[[projects]]\npath = %q\n\n", p)
	}
	cfg += "[reconcile]\nenabled = false\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServeBotOnly: a bot-only host (reconcile.enabled = false, no store,
// no runner, no webhook secret) watches the registry and opens the merge
// request; its /status says so; it has no webhook route and no /resync.
// `hydrafy reconcile` refuses its config in one line.
func TestServeBotOnly(t *testing.T) {
	reg := nixtest.Registry(t)
	rel := nixtest.PushRelease(t, reg, "2.25.0", "latest")
	repo := reg + "/nixos/nix"
	gts := nixtest.NewGitLab(t, gitlabemu.Options{})
	emu := gts.Emu
	emu.AddToken(e2eBotToken, "hydrafy-bot")
	gts.Project(t, "group/app", map[string]string{".gitlab-ci.yml": "build:\n  image: " + repo + ":latest\n"})

	dir := t.TempDir()
	addr := freeAddr(t)
	path := filepath.Join(dir, "hydrafy.toml")
	writeBotOnlyConfig(t, path, addr, filepath.Join(dir, "state"), gts.URL, repo, "group/app")
	t.Setenv("HYDRAFY_GITLAB_TOKEN", e2eBotToken)
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", "")

	var stderr strings.Builder
	code := run(context.Background(), []string{"reconcile", "--config", path}, &strings.Builder{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "bot-only host") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("hydrafy reconcile on a bot-only config: exit %d, %q", code, stderr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	var logs nixtest.Buffer
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
	nixtest.WaitFor(t, "the bot's merge request in /status", func() bool {
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

// TestTwoBotsServe: two bot-only daemons started by mistake on the same
// projects, each with its own state and token, pass every second, nearly
// together. Over three digests each project keeps one merge request,
// the same one, updated in place to the newest digest.
func TestTwoBotsServe(t *testing.T) {
	reg := nixtest.Registry(t)
	rels := []nixtest.Release{
		nixtest.PushRelease(t, reg, "2.25.0", "latest"),
		nixtest.PushRelease(t, reg, "2.26.0"),
		nixtest.PushRelease(t, reg, "2.27.0"),
	}
	repo := reg + "/nixos/nix"
	gts := nixtest.NewGitLab(t, gitlabemu.Options{})
	emu := gts.Emu
	projects := []string{"group/app", "group/infra", "group/docs"}
	for _, p := range projects {
		gts.Project(t, p, map[string]string{".gitlab-ci.yml": "build:\n  image: " + repo + ":latest\n"})
	}
	// Both daemons run in this process: each reads its token from its
	// own file.
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "")
	t.Setenv("HYDRAFY_WEBHOOK_SECRET", "")
	var wait []func()
	var addrs []string
	for i := range 2 {
		dir := t.TempDir()
		tok := fmt.Sprintf("glpat-bot-%d", i)
		emu.AddToken(tok, fmt.Sprintf("hydrafy-bot-%d", i))
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "hydrafy.toml")
		addrs = append(addrs, freeAddr(t))
		writeBotOnlyConfig(t, path, addrs[i], filepath.Join(dir, "state"), gts.URL, repo, projects...)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.Replace(string(b), "[gitlab]\n", fmt.Sprintf("[gitlab]\ntoken_file = %q\n", filepath.Join(dir, "token")), 1)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan int, 1)
		var logs nixtest.Buffer
		go func() { served <- run(ctx, []string{"serve", "--config", path}, &logs, &logs) }()
		wait = append(wait, func() {
			cancel()
			if code := <-served; code != 0 {
				t.Errorf("bot %d exited %d: %s", i, code, logs.String())
			}
		})
	}
	defer func() {
		for _, w := range wait {
			w()
		}
	}()

	first := map[string]int64{}
	for round, rel := range rels {
		if round > 0 {
			nixtest.PushIndex(t, repo+":latest", rel.Index)
		}
		nixtest.WaitFor(t, "every project's merge request to propose "+rel.Digest, func() bool {
			for _, p := range projects {
				mrs := emu.MergeRequests(p)
				if len(mrs) == 0 || !strings.Contains(mrs[len(mrs)-1].Description, rel.Digest) {
					return false
				}
			}
			return true
		})
		// Both bots have passed over the new digest, without an error.
		for i, addr := range addrs {
			nixtest.WaitFor(t, fmt.Sprintf("bot %d's pass over %s", i, rel.Digest), func() bool {
				resp, err := http.Get("http://" + addr + "/status")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var st fleetStatus
				if json.NewDecoder(resp.Body).Decode(&st) != nil {
					return false
				}
				if st.Watch.Error != "" {
					t.Errorf("bot %d: %s", i, st.Watch.Error)
				}
				return st.Watch.Result != nil && st.Watch.Result.Digest == rel.Digest && len(st.Watch.Result.MergeRequests) == len(projects)
			})
		}
		for _, p := range projects {
			mrs := emu.MergeRequests(p)
			if len(mrs) != 1 || mrs[0].State != "opened" || !strings.Contains(mrs[0].Description, rel.Digest) {
				t.Fatalf("round %d: %s has merge requests %+v, want one open proposing %s", round, p, mrs, rel.Digest)
			}
			if round == 0 {
				first[p] = mrs[0].IID
			} else if mrs[0].IID != first[p] {
				t.Errorf("round %d: %s !%d, want !%d updated in place", round, p, mrs[0].IID, first[p])
			}
			got, err := emu.File(p, mrs[0].SourceBranch, ".gitlab-ci.yml")
			if err != nil || !strings.Contains(got, rel.Digest) {
				t.Errorf("round %d: %s proposal branch: %q, %v", round, p, got, err)
			}
		}
	}
}
