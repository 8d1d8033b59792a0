package config_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/config"
)

// secrets maps each secret's environment variable to its *_file key.
var secrets = []struct {
	env, fileKey string
	get          func(config.Config) config.Secret
}{
	{"HYDRAFY_WEBHOOK_SECRET", "server.webhook_secret_file", func(c config.Config) config.Secret { return c.Server.WebhookSecret }},
	{"HYDRAFY_RESYNC_TOKEN", "server.resync_token_file", func(c config.Config) config.Secret { return c.Server.ResyncToken }},
	{"HYDRAFY_GITLAB_TOKEN", "gitlab.token_file", func(c config.Config) config.Secret { return c.GitLab.Token }},
	{"HYDRAFY_RUNNER_TOKEN", "runner.token_file", func(c config.Config) config.Secret { return c.Runner.Token }},
	{"HYDRAFY_METRICS_TOKEN", "server.metrics_token_file", func(c config.Config) config.Secret { return c.Server.MetricsToken }},
}

// writeConfig writes a config whose five *_file keys point at
// dir/<env name>, and returns its path.
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	f := func(env string) string { return fmt.Sprintf("%q", filepath.Join(dir, env)) }
	body := fmt.Sprintf(`[server]
webhook_secret_file = %s
resync_token_file = %s
metrics_token_file = %s
[gitlab]
url = %q
token_file = %s
[runner]
token_file = %s
`, f("HYDRAFY_WEBHOOK_SECRET"), f("HYDRAFY_RESYNC_TOKEN"), f("HYDRAFY_METRICS_TOKEN"), gitlabURL, f("HYDRAFY_GITLAB_TOKEN"), f("HYDRAFY_RUNNER_TOKEN"))
	path := filepath.Join(dir, "hydrafy.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadSecrets(t *testing.T) {
	for _, s := range secrets {
		t.Run(s.env, func(t *testing.T) {
			tests := []struct {
				name    string
				env     map[string]string
				file    *string // nil: no file on disk
				want    string
				wantErr string
			}{
				{name: "environment wins over the file", env: map[string]string{s.env: "from-env"}, file: ptr("from-file\n"), want: "from-env"},
				{name: "file is read and trimmed", file: ptr("  from-file \n\n"), want: "from-file"},
				{name: "empty variable falls back to the file", env: map[string]string{s.env: ""}, file: ptr("from-file"), want: "from-file"},
				{name: "environment alone, file missing", env: map[string]string{s.env: "from-env"}, want: "from-env"},
				{name: "missing file is an error", wantErr: "reading " + s.fileKey},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					dir := t.TempDir()
					path := writeConfig(t, dir)
					// The other three secrets come from the environment so
					// that only the one under test touches its file.
					env := map[string]string{}
					for _, o := range secrets {
						if o.env != s.env {
							env[o.env] = "other-" + o.env
						}
					}
					for k, v := range tt.env {
						env[k] = v
					}
					if tt.file != nil {
						if err := os.WriteFile(filepath.Join(dir, s.env), []byte(*tt.file), 0o600); err != nil {
							t.Fatal(err)
						}
					}
					c, err := config.Load(path, envFrom(env))
					if tt.wantErr != "" {
						if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
							t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
						}
						if !strings.Contains(err.Error(), s.env) {
							t.Errorf("Load error %q does not name the variable %s", err, s.env)
						}
						return
					}
					if err != nil {
						t.Fatalf("Load: %v", err)
					}
					if got := s.get(c).Reveal(); got != tt.want {
						t.Errorf("%s = %q, want %q", s.env, got, tt.want)
					}
					// Each secret lands in its own field, not a neighbour's.
					for _, o := range secrets {
						if o.env == s.env {
							continue
						}
						if got, want := o.get(c).Reveal(), "other-"+o.env; got != want {
							t.Errorf("%s = %q, want %q", o.env, got, want)
						}
					}
				})
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestLoadWithoutSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hydrafy.toml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path, envFrom(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Default()
	want.GitLab.URL = gitlabURL
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(minimal+"[watch]\ntga = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, wantErr string }{
		{"missing config file", filepath.Join(dir, "nope.toml"), "reading config"},
		{"unknown key", bad, "unknown config key watch.tga"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(tt.path, envFrom(nil))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSecretsNeverPrinted formats a loaded config every way a log line or
// an error message might, and looks for each secret's value in the output.
func TestSecretsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir)
	env := map[string]string{}
	for i, s := range secrets {
		env[s.env] = fmt.Sprintf("s3cr3t-value-%d", i)
	}
	// One secret from a file, to cover that path too.
	if err := os.WriteFile(filepath.Join(dir, "HYDRAFY_RUNNER_TOKEN"), []byte("s3cr3t-value-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(env, "HYDRAFY_RUNNER_TOKEN")
	c, err := config.Load(path, envFrom(env))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for i, s := range secrets {
		if got, want := s.get(c).Reveal(), fmt.Sprintf("s3cr3t-value-%d", i); got != want {
			t.Fatalf("%s = %q, want %q", s.env, got, want)
		}
	}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%10.3f", "%T"} {
		outputs["fmt "+verb+" config"] = fmt.Sprintf(verb, c)
		outputs["fmt "+verb+" pointer"] = fmt.Sprintf(verb, &c)
		outputs["fmt "+verb+" section"] = fmt.Sprintf(verb, c.GitLab)
		outputs["fmt "+verb+" secret"] = fmt.Sprintf(verb, c.GitLab.Token)
	}
	outputs["fmt Sprint"] = fmt.Sprint(c, c.Server, c.Runner.Token)
	outputs["fmt Sprintln"] = fmt.Sprintln(c, c.Server, c.Runner.Token)
	outputs["fmt Errorf"] = fmt.Errorf("starting with %v: %w", c, os.ErrInvalid).Error()

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := slog.New(h(&b))
		log.Info("config", "cfg", c, "server", c.Server, "token", c.GitLab.Token)
		log.Info("group", slog.Group("g", slog.Any("runner", c.Runner), slog.Any("secret", c.Runner.Token)))
		log.With("w", c.Server.WebhookSecret).Info("with")
		outputs[name] = b.String()
	}

	j, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	outputs["json"] = string(j)
	ji, err := json.MarshalIndent(map[string]any{"c": &c, "t": c.Server.ResyncToken}, "", " ")
	if err != nil {
		t.Fatalf("json.MarshalIndent: %v", err)
	}
	outputs["json indent"] = string(ji)

	var tb bytes.Buffer
	if err := toml.NewEncoder(&tb).Encode(c); err != nil {
		t.Fatalf("toml encode: %v", err)
	}
	outputs["toml"] = tb.String()

	for name, out := range outputs {
		for i := range secrets {
			v := fmt.Sprintf("s3cr3t-value-%d", i)
			for _, form := range []string{v, hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))), "s3cr3t"} {
				if strings.Contains(out, form) {
					t.Errorf("%s output holds secret %d (%q):\n%s", name, i, form, out)
				}
			}
		}
	}
	// The mask must show that a value is set, so that "unset" and
	// "set" can be told apart in a log.
	if !strings.Contains(outputs["fmt %+v config"], "[redacted]") {
		t.Errorf("%%+v of the config shows no mask:\n%s", outputs["fmt %+v config"])
	}
}

func TestSecretEmptyPrintsEmpty(t *testing.T) {
	var s config.Secret
	if got := fmt.Sprintf("%v|%s|%d", s, s, s); got != "||" {
		t.Errorf("empty secret printed as %q, want %q", got, "||")
	}
	if got := config.Secret("x").Reveal(); got != "x" {
		t.Errorf("Reveal = %q, want %q", got, "x")
	}
}

// TestSecretFileWarnings: a secret file readable by group or others is
// named, with its mode; one readable by its owner only is not.
func TestSecretFileWarnings(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir)
	modes := map[string]os.FileMode{
		"HYDRAFY_WEBHOOK_SECRET": 0o600, "HYDRAFY_RESYNC_TOKEN": 0o640, "HYDRAFY_GITLAB_TOKEN": 0o644,
		"HYDRAFY_RUNNER_TOKEN": 0o400, "HYDRAFY_METRICS_TOKEN": 0o604,
	}
	for env, mode := range modes {
		f := filepath.Join(dir, env)
		if err := os.WriteFile(f, []byte("value-of-"+env), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
	}
	c, err := config.Load(path, envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := c.SecretFileWarnings()
	want := []string{
		"server.resync_token_file " + filepath.Join(dir, "HYDRAFY_RESYNC_TOKEN") + " is readable by group or others (mode 0640); chmod 600 it",
		"server.metrics_token_file " + filepath.Join(dir, "HYDRAFY_METRICS_TOKEN") + " is readable by group or others (mode 0604); chmod 600 it",
		"gitlab.token_file " + filepath.Join(dir, "HYDRAFY_GITLAB_TOKEN") + " is readable by group or others (mode 0644); chmod 600 it",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	for _, w := range got {
		if strings.Contains(w, "value-of-") {
			t.Errorf("a warning holds a secret: %s", w)
		}
	}
}
