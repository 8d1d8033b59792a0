package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot/watch"
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
