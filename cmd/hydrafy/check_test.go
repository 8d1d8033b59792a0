package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/bot/watch"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// checkRegistry serves an in-process registry holding nixos/nix:latest as
// an index of amd64 and arm64 images, and returns its host and the digest.
// Once the image is pushed, manifest HEAD requests are answered by fail
// instead when it returns true.
func checkRegistry(t *testing.T, fail func(http.ResponseWriter, *http.Request) bool) (string, string) {
	t.Helper()
	reg := nixtest.NewReg(t)
	d := reg.PushIndex(t, "latest", nixtest.RandomIndex(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "", "linux/amd64", "linux/arm64"))
	if fail != nil {
		reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			return r.Method == http.MethodHead && nixtest.RequestKind(r.URL.Path) == "manifests" && fail(w, r)
		})
	}
	return reg.Host, d
}

// writeConfig writes a config whose [watch] section is watchTOML and whose
// state_dir is dir.
func writeConfig(t *testing.T, dir, watchTOML string) string {
	t.Helper()
	path := filepath.Join(dir, "hydrafy.toml")
	text := fmt.Sprintf("[server]\nstate_dir = %q\n\n[gitlab]\nurl = \"https://gitlab.example\"\n\n[watch]\n%s\n", filepath.Join(dir, "state"), watchTOML)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckDryRun(t *testing.T) {
	host, digest := checkRegistry(t, nil)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("image = %q\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsettle = \"1h\"", host+"/nixos/nix"))

	code, out, errs := runCmd("check", "--config", cfg, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	for _, want := range []string{
		"image:      " + host + "/nixos/nix\n",
		"tag:        latest\n",
		"digest:     " + digest + "\n",
		"platforms:  linux/amd64, linux/arm64\n",
		"stable for: 0s\n",
		"created:    2026-11-01T00:00:00Z\n",
		"propose:    no, settling: unchanged for 0s of 1h0m0s (ready at ",
		"state:      not written (--dry-run)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("--dry-run touched the state dir: %v", err)
	}
}

// TestCheckRecordsState: without --dry-run the observation is stored, and a
// later check decides from it.
func TestCheckRecordsState(t *testing.T) {
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "glpat-unused")
	host, digest := checkRegistry(t, nil)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("image = %q\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsettle = \"1h\"", host+"/nixos/nix"))
	statePath := filepath.Join(dir, "state", "watch.json")

	if code, out, errs := runCmd("check", "--config", cfg); code != 0 || !strings.Contains(out, "state:      "+statePath+"\n") {
		t.Fatalf("exit %d, stdout %s, stderr %s", code, out, errs)
	}
	var st watch.State
	data, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	key := host + "/nixos/nix:latest"
	obs, ok := st.Tags[key]
	if st.Version != watch.StateVersion || !ok || obs.Digest != digest || len(obs.Platforms) != 2 {
		t.Fatalf("state %s", data)
	}

	// Pretend the digest was first seen two hours ago: now it is ready.
	obs.FirstSeen = obs.FirstSeen.Add(-2 * time.Hour)
	st.Tags[key] = obs
	data, err = json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("check", "--config", cfg, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	for _, want := range []string{"(unchanged since the last check)\n", "stable for: 2h0m", "propose:    yes, unchanged for 2h0m"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	after, err := os.ReadFile(statePath)
	if err != nil || !bytes.Equal(after, data) {
		t.Errorf("--dry-run rewrote the state file (err %v)", err)
	}
}

func TestCheckFails(t *testing.T) {
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "glpat-unused")
	host, _ := checkRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	dir := t.TempDir()
	image := fmt.Sprintf("image = %q", host+"/nixos/nix")
	badDir := filepath.Join(dir, "bad")
	badState := filepath.Join(badDir, "watch.json")
	if err := os.MkdirAll(badDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badState, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown watch key", []string{"--config", writeConfig(t, t.TempDir(), image+"\nsettel = \"1h\"")}, 1,
			"hydrafy check: unknown config key watch.settel\n"},
		{"registry keeps refusing", []string{"--config", writeConfig(t, dir, image), "--dry-run"}, 1,
			"hydrafy check: resolving " + host + "/nixos/nix:latest: registry answered 429 Too Many Requests after 4 attempts\n"},
		{"corrupt state", []string{"--config", writeConfig(t, t.TempDir(), image), "--state-dir", badDir}, 1,
			"hydrafy check: reading watch state " + badState + ": invalid character 'n' looking for beginning of object key string\n"},
		{"bad platform", []string{"--config", writeConfig(t, t.TempDir(), image+"\nplatforms = [\"amd64\"]")}, 1,
			"hydrafy check: watch: platform \"amd64\" is not os/arch[/variant]\n"},
		{"no config", []string{"--dry-run"}, 2, "hydrafy check: --config FILE is required (see hydrafy check --help)\n"},
		{"stray argument", []string{"--config", "x.toml", "extra"}, 2, "hydrafy check: unexpected argument \"extra\" (see hydrafy check --help)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(append([]string{"check"}, tc.args...)...)
			if code != tc.code || errs != tc.stderr || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d, stderr %q", code, errs, out, tc.code, tc.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("a failed check wrote state: %v", err)
	}
}

func TestCheckNeedsTokenToPropose(t *testing.T) {
	host, _ := checkRegistry(t, nil)
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "")
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf("image = %q", host+"/nixos/nix"))
	if code, _, errs := runCmd("check", "--config", cfg); code != 1 || errs != "hydrafy check: no GitLab token: set HYDRAFY_GITLAB_TOKEN or gitlab.token_file\n" {
		t.Errorf("check without a token: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd("check", "--config", cfg, "--dry-run"); code != 0 {
		t.Errorf("check --dry-run needs no token, got exit %d, stderr %q", code, errs)
	}
}

// TestCheckProposes runs `hydrafy check` (watch + propose) twice against the
// in-process registry and the GitLab emulator: the first pass opens one MR
// per watched project and reports the broken one; the second makes no
// write call at all.
func TestCheckProposes(t *testing.T) {
	host, digest := checkRegistry(t, nil)
	ts := nixtest.NewGitLab(t, gitlabemu.Options{})
	emu := ts.Emu
	emu.AddToken("glpat-check", "hydrafy-bot")
	for path, ci := range map[string]string{
		"team/app": "image: \"" + host + "/nixos/nix:latest\"\n",
		"team/lib": "build:\n  image:\n    name: " + host + "/nixos/nix\n",
	} {
		ts.Project(t, path, map[string]string{".gitlab-ci.yml": ci})
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hydrafy.toml")
	text := fmt.Sprintf(`[server]
state_dir = %q

[gitlab]
url = %q

[watch]
image = %q
settle = "0s"

[[projects]]
path = "team/app"

[[projects]]
path = "team/lib"

[[projects]]
path = "team/gone"
`, filepath.Join(dir, "state"), ts.URL, host+"/nixos/nix")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HYDRAFY_GITLAB_TOKEN", "glpat-check")

	// The preview reads the projects and prints the diffs; it writes
	// nothing, in GitLab or in the state dir.
	code, out, errs := runCmd("check", "--config", cfg, "--dry-run")
	if code != 1 || !strings.Contains(errs, "1 of 3 projects failed") {
		t.Fatalf("dry run: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"team/app: would-propose\n--- a/team/app/.gitlab-ci.yml\n+++ b/team/app/.gitlab-ci.yml\n@@ -1 +1 @@\n" +
			"-image: \"" + host + "/nixos/nix:latest\"\n+image: \"" + host + "/nixos/nix:latest@" + digest + "\"\n",
		"team/lib: would-propose\n--- a/team/lib/.gitlab-ci.yml\n",
		"team/gone: failed: reading project team/gone: not found (404)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if w := emu.Writes(); len(w) != 0 {
		t.Errorf("dry run made write calls: %v", w)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("dry run touched the state dir: %v", err)
	}

	code, out, errs = runCmd("check", "--config", cfg, "--no-seed")
	if code != 1 || !strings.Contains(errs, "1 of 3 projects failed") {
		t.Fatalf("first pass: exit %d, stderr %q, want exit 1 naming the failed project", code, errs)
	}
	for _, want := range []string{"propose:    yes", "team/app", "team/lib", "team/gone", "seeding:    skipped (--no-seed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("first pass output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range []string{"team/app", "team/lib"} {
		mrs := emu.MergeRequests(p)
		if len(mrs) != 1 || mrs[0].State != "opened" {
			t.Fatalf("%s: MRs %+v, want one open", p, mrs)
		}
		ci, err := emu.File(p, mrs[0].SourceBranch, ".gitlab-ci.yml")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ci), "@"+digest) {
			t.Errorf("%s: proposed file does not pin %s:\n%s", p, digest, ci)
		}
	}

	emu.ResetRequests()
	code, _, errs = runCmd("check", "--config", cfg, "--no-seed")
	if code != 1 {
		t.Fatalf("second pass: exit %d, stderr %q", code, errs)
	}
	if w := emu.Writes(); len(w) != 0 {
		t.Errorf("second pass with nothing new made write calls: %v", w)
	}
	if token := "glpat-check"; strings.Contains(errs, token) {
		t.Errorf("stderr leaks the token: %s", errs)
	}

	// After a merge the project is up to date, and the report names the
	// merge request that made it so.
	mr := emu.MergeRequests("team/app")[0]
	if _, err := emu.Merge("team/app", mr.IID, "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("check", "--config", cfg, "--no-seed")
	if want := fmt.Sprintf("team/app: up-to-date (last merged: !%d ", mr.IID); code != 1 || !strings.Contains(out, want) {
		t.Errorf("after the merge: exit %d, output lacks %q:\n%s", code, want, out)
	}

	// A bot-only host proposes without seeding and says so: the runner
	// hosts seed when the proposal branch is pushed.
	botOnly := strings.Replace(text, "[[projects]]", "[reconcile]\nenabled = false\n\n[[projects]]", 1)
	if err := os.WriteFile(cfg, []byte(botOnly), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("check", "--config", cfg)
	if code != 1 || !strings.Contains(out, "seeding:    none on this host (reconcile.enabled = false)") || !strings.Contains(out, "team/app: up-to-date") {
		t.Errorf("bot-only check: exit %d, stdout %s, stderr %s", code, out, errs)
	}
}

// TestCheckSeedsBeforeProposing: `hydrafy check` on the runner host runs
// the daemon's pass in its own process. Release B is merged into the live
// store (real Nix verifies: A's and B's paths) before the merge request
// opens, and the description says the store holds it. Then, with the
// daemon running on the same state dir, check asks the daemon for the
// pass and says so.
func TestCheckSeedsBeforeProposing(t *testing.T) {
	e, repo, a, b := newUpgradeE2E(t, ":2.24.9")
	stager := e.stager(t)
	var out bytes.Buffer
	if err := checkSeeding(t.Context(), e.cfg, slog.New(slog.DiscardHandler), stager, time.Now(), &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"digest:     " + b.Digest, "version:    2.25.0", "seeding:    seeded by pass ", "(in this process, as the daemon does)", "group/app: opened !1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if diff := cmp.Diff(nixtest.Union(a.Paths, b.Paths), nixtest.Verify(t, e.store)); diff != "" {
		t.Errorf("live store paths after check (-want +got):\n%s", diff)
	}
	mrs := e.emu.MergeRequests("group/app")
	if len(mrs) != 1 || mrs[0].Title != "Update "+repo+":2.25.0 Docker digest to "+b.Digest[7:14] ||
		!strings.Contains(mrs[0].Description, "Nothing on the runner hosts waits for this merge") {
		t.Fatalf("merge requests %+v", mrs)
	}
	ci, err := e.emu.File("group/app", mrs[0].SourceBranch, ".gitlab-ci.yml")
	if err != nil || string(ci) != "build:\n  image: "+repo+":2.25.0@"+b.Digest+"\n" {
		t.Errorf("proposed file %q (%v)", ci, err)
	}

	// The daemon holds the state dir now: check asks it.
	e.serve(t, stager)
	cfg := e.cfg
	cfg.Server.Listen = strings.TrimPrefix(e.base, "http://")
	out.Reset()
	if err := checkSeeding(t.Context(), cfg, slog.New(slog.DiscardHandler), stager, time.Now(), &out); err != nil {
		t.Fatalf("check next to the daemon: %v\n%s", err, out.String())
	}
	for _, want := range []string{"pass:       run by the daemon at " + cfg.Server.Listen + " (POST /resync?watch=1)", "digest:     " + b.Digest, "group/app: unchanged !1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	cfg.Server.ResyncToken = ""
	if err := checkSeeding(t.Context(), cfg, slog.New(slog.DiscardHandler), stager, time.Now(), &out); err == nil || !strings.Contains(err.Error(), "set HYDRAFY_RESYNC_TOKEN") {
		t.Errorf("check next to the daemon without the resync token: %v", err)
	}
}
