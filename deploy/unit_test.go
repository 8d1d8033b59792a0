package deploy_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"gitlab.com/hydrafy/hydrafy/config"
)

// unit is a systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the single value of key in section.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Errorf("[%s] %s has values %q, want exactly one", section, key, v)
		return ""
	}
	return v[0]
}

// systemdSeconds parses the forms of systemd time spans this unit uses.
func systemdSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	r := strings.NewReplacer("min", "m", "hour", "h", "sec", "s", " ", "")
	d, err := time.ParseDuration(r.Replace(s))
	if err != nil {
		t.Fatalf("time span %q: %v", s, err)
	}
	return d
}

// credentialDir is $CREDENTIALS_DIRECTORY of hydrafy.service.
const credentialDir = "/run/credentials/hydrafy.service/"

func TestServiceUnit(t *testing.T) {
	u := parseUnit(t, "hydrafy.service")
	def := config.Default()

	if got := u.one(t, "Service", "ExecStart"); !strings.HasSuffix(got, " serve --config /etc/hydrafy/hydrafy.toml") {
		t.Errorf("ExecStart=%s, want hydrafy serve --config /etc/hydrafy/hydrafy.toml", got)
	}
	for key, want := range map[string]string{
		"User":                    "root",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"SystemCallFilter":        "@system-service",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"KillMode":                "mixed",
		"StateDirectory":          filepath.Base(def.Server.StateDir),
	} {
		if got := u.one(t, "Service", key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if filepath.Dir(def.Server.StateDir) != "/var/lib" {
		t.Errorf("server.state_dir default %s is not under /var/lib, where StateDirectory= puts it", def.Server.StateDir)
	}

	// Stopping waits for a reconcile that has stopped the runner: the
	// store lock, the merge and the restart must fit in the timeout.
	if stop := systemdSeconds(t, u.one(t, "Service", "TimeoutStopSec")); stop < def.Store.LockTimeout.D()+10*time.Minute {
		t.Errorf("TimeoutStopSec=%s leaves less than 10m beyond store.lock_timeout (%s)", stop, def.Store.LockTimeout.D())
	}

	rw := strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " "))
	for _, want := range []string{def.Store.Dir, filepath.Dir(def.Runner.ConfigFile)} {
		if !slices.Contains(rw, want) {
			t.Errorf("ReadWritePaths %v lacks %s", rw, want)
		}
	}

	// Every *_file key of the example that points into the credentials
	// dir has its LoadCredential=, named after its environment variable
	// (HYDRAFY_GITLAB_TOKEN ↔ gitlab_token), as INSTALL.md relies on.
	creds := map[string]string{}
	for _, lc := range u["Service"]["LoadCredential"] {
		name, src, ok := strings.Cut(lc, ":")
		if !ok {
			t.Errorf("LoadCredential=%s has no source file", lc)
		}
		creds[name] = src
	}
	data, err := os.ReadFile("hydrafy.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := config.Parse(data)
	if err != nil {
		t.Fatalf("parsing the example: %v", err)
	}
	files := map[string]string{
		"HYDRAFY_WEBHOOK_SECRET": ex.Server.WebhookSecretFile,
		"HYDRAFY_RESYNC_TOKEN":   ex.Server.ResyncTokenFile,
		"HYDRAFY_GITLAB_TOKEN":   ex.GitLab.TokenFile,
		"HYDRAFY_RUNNER_TOKEN":   ex.Runner.TokenFile,
	}
	if ex.Server.WebhookSecretFile == "" {
		t.Errorf("the example reads no webhook secret file; serve refuses to start without a secret")
	}
	for env, file := range files {
		if file == "" {
			continue
		}
		name, ok := strings.CutPrefix(file, credentialDir)
		if !ok {
			t.Errorf("the example's file for %s is %s, not in %s", env, file, credentialDir)
			continue
		}
		if want := strings.ToLower(strings.TrimPrefix(env, "HYDRAFY_")); name != want {
			t.Errorf("credential for %s is named %s, want %s", env, name, want)
		}
		if src, ok := creds[name]; !ok {
			t.Errorf("hydrafy.service has no LoadCredential=%s:… for %s", name, file)
		} else if src != "/etc/hydrafy/credentials/"+name {
			t.Errorf("LoadCredential=%s:%s, want the source /etc/hydrafy/credentials/%s (INSTALL.md)", name, src, name)
		}
	}
	for name := range creds {
		if !slices.Contains(slices.Collect(maps.Values(files)), credentialDir+name) {
			t.Errorf("LoadCredential=%s matches no *_file key of the example", name)
		}
	}
}

// TestServiceUnitVerifies runs systemd-analyze verify on the unit, with
// ExecStart pointed at an executable that exists here. It reports unknown
// keys and values that systemd would ignore at run time.
func TestServiceUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found: install Debian's systemd package (scripts/test does)")
	}
	data, err := os.ReadFile("hydrafy.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "hydrafy.service")
	unitText := strings.Replace(string(data), "ExecStart=/usr/local/bin/hydrafy ", "ExecStart="+self+" ", 1)
	if unitText == string(data) {
		t.Fatal("ExecStart does not run /usr/local/bin/hydrafy")
	}
	if err := os.WriteFile(path, []byte(unitText), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, "verify", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// And a unit with a mistake must not pass, or the check above proves
	// nothing.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte(unitText+"ProtectSystm=strict\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.CommandContext(ctx, analyze, "verify", bad).CombinedOutput()
	if !strings.Contains(string(out), "ProtectSystm") {
		t.Errorf("systemd-analyze verify did not report an unknown key:\n%s", out)
	}
}

func TestRunnerConfigSnippet(t *testing.T) {
	var rc struct {
		Runners []struct {
			Name     string `toml:"name"`
			Executor string `toml:"executor"`
			Docker   struct {
				Image   string   `toml:"image"`
				Volumes []string `toml:"volumes"`
			} `toml:"docker"`
		} `toml:"runners"`
	}
	if _, err := toml.DecodeFile("runner-config.toml", &rc); err != nil {
		t.Fatalf("parsing runner-config.toml: %v", err)
	}
	if len(rc.Runners) != 1 {
		t.Fatalf("runner-config.toml has %d [[runners]], want 1", len(rc.Runners))
	}
	r := rc.Runners[0]
	def := config.Default()
	if r.Executor != "docker" {
		t.Errorf("executor = %q, want docker", r.Executor)
	}
	want := []string{
		def.Store.Dir + "/nix/store:/nix/store:rw",
		def.Store.Dir + "/nix/var/nix/db:/nix/var/nix/db:rw",
		def.Store.Dir + "/nix/var/nix/gcroots/hydrafy:/nix/var/nix/gcroots/hydrafy:ro",
	}
	if !slices.Equal(want, r.Docker.Volumes) {
		t.Errorf("volumes = %q, want %q (from store.dir's default)", r.Docker.Volumes, want)
	}
	repo, digest, ok := strings.Cut(r.Docker.Image, "@sha256:")
	if !ok || repo != def.Watch.Image || len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		t.Errorf("image = %q, want %s@sha256:<64 hex digits>", r.Docker.Image, def.Watch.Image)
	}
}
