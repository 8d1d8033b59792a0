package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	pinDigest = "sha256:11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"
	ciFile    = "# CI\nbuild:\n  image: nixos/nix:2.24 # nixos/nix\n  script:\n    - nix build\n  services: ['nixos/nix', nixos/nix-unstable]\n"
	ciPinned  = "# CI\nbuild:\n  image: nixos/nix:2.24@" + pinDigest + " # nixos/nix\n  script:\n    - nix build\n  services: ['nixos/nix@" + pinDigest + "', nixos/nix-unstable]\n"
)

// pinDir writes files into a temporary directory and changes into it, so
// that the diff headers name the files as given.
func pinDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

func runHydrafy(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPinDiff(t *testing.T) {
	pinDir(t, map[string]string{".gitlab-ci.yml": ciFile, "other.yml": "image: alpine\n"})
	code, stdout, stderr := runHydrafy(t, "pin", "--image", "nixos/nix", "--digest", pinDigest, "./.gitlab-ci.yml", "other.yml")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := "--- a/.gitlab-ci.yml\n+++ b/.gitlab-ci.yml\n@@ -1,6 +1,6 @@\n # CI\n build:\n" +
		"-  image: nixos/nix:2.24 # nixos/nix\n+  image: nixos/nix:2.24@" + pinDigest + " # nixos/nix\n" +
		"   script:\n     - nix build\n" +
		"-  services: ['nixos/nix', nixos/nix-unstable]\n+  services: ['nixos/nix@" + pinDigest + "', nixos/nix-unstable]\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("diff output mismatch (-want +got):\n%s", diff)
	}
	if got := readString(t, ".gitlab-ci.yml"); got != ciFile {
		t.Errorf("pin without --write changed the file to %q", got)
	}
	checkApplies(t, ciFile, ciPinned, strings.ReplaceAll(stdout, ".gitlab-ci.yml", "f"))
}

func TestPinWrite(t *testing.T) {
	dir := pinDir(t, map[string]string{".gitlab-ci.yml": ciFile, "unchanged.yml": "image: alpine\n"})
	if err := os.Symlink(".gitlab-ci.yml", filepath.Join(dir, "link.yml")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runHydrafy(t, "pin", "--write", "link.yml", "unchanged.yml", "--image", "nixos/nix", "--digest", pinDigest)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if want := "pinned 2 references in link.yml\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if got := readString(t, ".gitlab-ci.yml"); got != ciPinned {
		t.Errorf("file = %q, want %q", got, ciPinned)
	}
	info, err := os.Lstat("link.yml")
	if err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.yml is no longer a symlink: %v, %v", info.Mode(), err)
	}
	info, err = os.Stat(".gitlab-ci.yml")
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v (%v), want 0640", info.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("directory holds %d entries, want 3 (no temporary file left): %v", len(entries), entries)
	}

	// Pinning again changes and prints nothing.
	code, stdout, stderr = runHydrafy(t, "pin", "--write", "--image", "nixos/nix", "--digest", pinDigest, ".gitlab-ci.yml")
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("second pin: exit %d, stdout %q, stderr %q; want 0 and no output", code, stdout, stderr)
	}
}

// TestPinReports: a version tag kept next to the new digest is named on
// stderr, one line per reference (not with --tag); references through an
// unresolvable variable are listed; files without any reference of the
// image fail.
func TestPinReports(t *testing.T) {
	files := map[string]string{
		"ci.yml":    ciFile,
		"proxy.yml": "a:\n  image: ${CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX}/nixos/nix:latest\nb:\n  image: $CI_REGISTRY/nixos/nix\n",
		"none.yml":  "image: alpine\n",
		"var.yml":   "image: nixos/nix@$NIX_DIGEST\n",
	}
	pinDir(t, files)
	code, _, stderr := runHydrafy(t, "pin", "--image", "nixos/nix", "--digest", pinDigest, "ci.yml", "proxy.yml")
	want := "ci.yml:3: nixos/nix:2.24@" + pinDigest + ": tag 2.24 kept, but nothing said it points at this digest (--tag TAG names the digest's tag)\n"
	wantSkip := "proxy.yml:4: not pinned: $CI_REGISTRY/nixos/nix: its registry comes from $CI_REGISTRY, which hydrafy cannot resolve\n"
	if code != 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, wantSkip) || strings.Count(stderr, "\n") != 2 {
		t.Errorf("exit %d, stderr %q; want 0, %q and %q", code, stderr, want, wantSkip)
	}
	code, _, stderr = runHydrafy(t, "pin", "--image", "nixos/nix", "--digest", pinDigest, "--tag", "2.25.0", "ci.yml")
	if code != 0 || stderr != "" {
		t.Errorf("with --tag: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	code, stdout, stderr := runHydrafy(t, "pin", "--image", "nixos/nix", "--digest", pinDigest, "none.yml")
	if code != 1 || stdout != "" || stderr != "hydrafy pin: no reference of nixos/nix in none.yml\n" {
		t.Errorf("no reference: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runHydrafy(t, "pin", "--image", "nixos/nix", "--digest", pinDigest, "--write", "none.yml", "var.yml")
	if code != 1 || !strings.HasSuffix(stderr, "hydrafy pin: no reference of nixos/nix that can be pinned in none.yml, var.yml (1 listed above cannot be)\n") ||
		!strings.HasPrefix(stderr, "var.yml:1: not pinned: nixos/nix@$NIX_DIGEST: its digest comes from $NIX_DIGEST") {
		t.Errorf("unpinnable only: exit %d, stderr %q", code, stderr)
	}
	for name, data := range files {
		if got := readString(t, name); got != data && name != "ci.yml" {
			t.Errorf("%s changed to %q", name, got)
		}
	}
}

func TestPinUnchanged(t *testing.T) {
	pinDir(t, map[string]string{"ci.yml": ciPinned})
	code, stdout, stderr := runHydrafy(t, "pin", "--image", "nixos/nix", "--digest", pinDigest, "ci.yml")
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and no output", code, stdout, stderr)
	}
}

func TestPinErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"bad digest", []string{"--image", "nixos/nix", "--digest", "sha256:abc", "ci.yml"}, 1,
			"hydrafy pin: invalid digest \"sha256:abc\": want sha256: followed by 64 lowercase hex digits\n"},
		{"bad image", []string{"--image", "nixos/nix:2.24", "--digest", pinDigest, "ci.yml"}, 1, "hydrafy pin: invalid image \"nixos/nix:2.24\""},
		{"invalid yaml", []string{"--image", "nixos/nix", "--digest", pinDigest, "ci.yml", "broken.yml"}, 1,
			"hydrafy pin: broken.yml: parsing: yaml: line 2: did not find expected key\n"},
		{"missing file", []string{"--image", "nixos/nix", "--digest", pinDigest, "ci.yml", "missing.yml"}, 1,
			"hydrafy pin: reading missing.yml: no such file or directory\n"},
		{"no files", []string{"--image", "nixos/nix", "--digest", pinDigest}, 2, "hydrafy pin: no FILE to pin (see hydrafy pin --help)\n"},
		{"no digest", []string{"--image", "nixos/nix", "ci.yml"}, 2, "hydrafy pin: --digest sha256:… is required (see hydrafy pin --help)\n"},
		{"unknown flag", []string{"--image", "nixos/nix", "--digest", pinDigest, "--frobnicate", "ci.yml"}, 2,
			"hydrafy pin: flag provided but not defined: -frobnicate (see hydrafy pin --help)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pinDir(t, map[string]string{"ci.yml": ciFile, "broken.yml": "build:\n  image: nixos/nix\n script: [\n"})
			code, stdout, stderr := runHydrafy(t, append([]string{"pin", "--write"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and stderr containing %q", code, stdout, stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q is not one line", stderr)
			}
			if got := readString(t, "ci.yml"); got != ciFile {
				t.Errorf("a failed pin changed ci.yml to %q", got)
			}
		})
	}
}

func readString(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
