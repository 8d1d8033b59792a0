package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
)

// TestCheckProposes runs `hydrafy check` (watch + propose) twice against the
// in-process registry and the GitLab emulator: the first pass opens one MR
// per watched project and reports the broken one; the second makes no
// write call at all.
func TestCheckProposes(t *testing.T) {
	host, digest := checkRegistry(t, nil)
	emu := gitlabemu.New(gitlabemu.Options{})
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { ts.Close(); emu.Close() })
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

	code, out, errs := runCmd("check", "--config", cfg, "--no-seed")
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
}
