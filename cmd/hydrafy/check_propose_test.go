package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

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
		if _, err := emu.AddProject(path, "main", map[string]string{".gitlab-ci.yml": ci}); err != nil {
			t.Fatal(err)
		}
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
