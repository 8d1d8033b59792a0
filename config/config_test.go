package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/config"
)

const gitlabURL = "https://gitlab.example.com"

// minimal is the smallest valid file; every case below starts from it.
const minimal = "[gitlab]\nurl = \"" + gitlabURL + "\"\n"

func boolPtr(b bool) *bool { return &b }

func TestParse(t *testing.T) {
	// withDefaults returns Default() with gitlab.url set and edit applied.
	withDefaults := func(edit func(*config.Config)) config.Config {
		c := config.Default()
		c.GitLab.URL = gitlabURL
		if edit != nil {
			edit(&c)
		}
		return c
	}
	tests := []struct {
		name    string
		in      string
		want    config.Config
		wantErr string // substring of the error; empty means success
	}{
		{
			name: "only gitlab.url gives the defaults",
			in:   minimal,
			want: withDefaults(nil),
		},
		{
			name:    "empty file lacks gitlab.url",
			in:      "",
			wantErr: "gitlab.url is required",
		},
		{
			name:    "gitlab section without url",
			in:      "[gitlab]\ntoken_file = \"/run/t\"\n",
			wantErr: "gitlab.url is required",
		},
		{
			name:    "gitlab.url without scheme",
			in:      "[gitlab]\nurl = \"gitlab.example.com\"\n",
			wantErr: "gitlab.url is not an http or https URL with a host",
		},
		{
			name:    "gitlab.url with another scheme",
			in:      "[gitlab]\nurl = \"ssh://git@gitlab.example.com\"\n",
			wantErr: "gitlab.url is not an http or https URL with a host",
		},
		{
			name:    "gitlab.url with a password",
			in:      "[gitlab]\nurl = \"https://bot:hunter2@gitlab.example.com\"\n",
			wantErr: "gitlab.url must not hold credentials",
		},
		{
			name: "gitlab.url on loopback over http",
			in:   "[gitlab]\nurl = \"http://127.0.0.1:8929/gitlab\"\n",
			want: func() config.Config { c := config.Default(); c.GitLab.URL = "http://127.0.0.1:8929/gitlab"; return c }(),
		},
		{
			name:    "unknown store.merge",
			in:      minimal + "[store]\nmerge = \"hot\"\n",
			wantErr: `store.merge "hot" is not one of drain, live`,
		},
		{
			name: "live store.merge",
			in:   minimal + "[store]\nmerge = \"live\"\n",
			want: func() config.Config {
				c := config.Default()
				c.GitLab.URL = gitlabURL
				c.Store.Merge = "live"
				return c
			}(),
		},
		{
			name:    "relative store.dir",
			in:      minimal + "[store]\ndir = \"nix-backup\"\n",
			wantErr: `store.dir "nix-backup" is not an absolute path`,
		},
		{
			name:    "negative settle",
			in:      minimal + "[watch]\nsettle = \"-5m\"\n",
			wantErr: "watch.settle -5m0s is negative",
		},
		{
			name:    "negative drain_timeout",
			in:      minimal + "[runner]\ndrain_timeout = \"-1s\"\n",
			wantErr: "runner.drain_timeout -1s is negative",
		},
		{
			name:    "default_image without a digest",
			in:      minimal + "[runner]\ndefault_image = \"nixos/nix:latest\"\n",
			wantErr: `runner.default_image "nixos/nix:latest" is not a digest reference`,
		},
		{
			name: "default_image with a digest",
			in:   minimal + "[runner]\ndefault_image = \"nixos/nix@sha256:" + strings.Repeat("a", 64) + "\"\n",
			want: withDefaults(func(c *config.Config) { c.Runner.DefaultImage = "nixos/nix@sha256:" + strings.Repeat("a", 64) }),
		},
		{
			name:    "negative lock_timeout",
			in:      minimal + "[store]\nlock_timeout = \"-1h\"\n",
			wantErr: "store.lock_timeout -1h0m0s is negative",
		},
		{
			name: "zero durations are allowed",
			in:   minimal + "[watch]\nsettle = \"0s\"\n[runner]\ndrain_timeout = \"0s\"\n",
			want: withDefaults(func(c *config.Config) { c.Watch.Settle = 0; c.Runner.DrainTimeout = 0 }),
		},
		{
			name:    "unknown top-level key",
			in:      "colour = \"blue\"\n" + minimal,
			wantErr: "unknown config key colour",
		},
		{
			name:    "unknown top-level table",
			in:      minimal + "[wacth]\ntag = \"x\"\n",
			wantErr: "unknown config key wacth",
		},
		{
			name:    "unknown nested key",
			in:      minimal + "[watch]\ntga = \"latest\"\n",
			wantErr: "unknown config key watch.tga",
		},
		{
			name:    "unknown key inside projects",
			in:      minimal + "[[projects]]\npath = \"g/a\"\nfiels = [\"ci.yml\"]\n",
			wantErr: "unknown config key projects.fiels",
		},
		{
			name:    "secret written into the file is refused",
			in:      minimal + "[server]\nwebhook_secret = \"hunter2\"\n",
			wantErr: "unknown config key server.webhook_secret",
		},
		{
			name:    "gitlab token written into the file is refused",
			in:      "[gitlab]\nurl = \"" + gitlabURL + "\"\ntoken = \"glpat-x\"\n",
			wantErr: "unknown config key gitlab.token",
		},
		{
			name:    "malformed TOML",
			in:      minimal + "[watch\n",
			wantErr: "parsing config",
		},
		{
			name:    "wrong type",
			in:      minimal + "[propose]\nmax_open = \"ten\"\n",
			wantErr: "propose.max_open",
		},
		{
			name: "semver alone clears the default tag",
			in:   minimal + "[watch]\nsemver = \">=2.30\"\n",
			want: withDefaults(func(c *config.Config) { c.Watch.Semver = ">=2.30"; c.Watch.Tag = "" }),
		},
		{
			name:    "tag and semver are exclusive",
			in:      minimal + "[watch]\ntag = \"latest\"\nsemver = \">=2.30\"\n",
			wantErr: "watch.tag and watch.semver are exclusive",
		},
		{
			name: "explicit tag",
			in:   minimal + "[watch]\ntag = \"2.31.2\"\n",
			want: withDefaults(func(c *config.Config) { c.Watch.Tag = "2.31.2" }),
		},
		{
			name: "runner.control docker",
			in:   minimal + "[runner]\ncontrol = \"docker\"\ncontainer = \"runner-1\"\n",
			want: withDefaults(func(c *config.Config) { c.Runner.Control = "docker"; c.Runner.Container = "runner-1" }),
		},
		{
			name: "runner.control none",
			in:   minimal + "[runner]\ncontrol = \"none\"\n",
			want: withDefaults(func(c *config.Config) { c.Runner.Control = "none" }),
		},
		{
			name: "runner.control command with both commands",
			in:   minimal + "[runner]\ncontrol = \"command\"\nstop_command = [\"sv\", \"stop\", \"runner\"]\nstart_command = [\"sv\", \"start\", \"runner\"]\n",
			want: withDefaults(func(c *config.Config) {
				c.Runner.Control = "command"
				c.Runner.StopCommand = []string{"sv", "stop", "runner"}
				c.Runner.StartCommand = []string{"sv", "start", "runner"}
			}),
		},
		{
			name:    "runner.control command without start_command",
			in:      minimal + "[runner]\ncontrol = \"command\"\nstop_command = [\"sv\", \"stop\", \"runner\"]\n",
			wantErr: "needs runner.stop_command and runner.start_command",
		},
		{
			name:    "runner.control command without stop_command",
			in:      minimal + "[runner]\ncontrol = \"command\"\nstart_command = [\"sv\", \"start\", \"runner\"]\n",
			wantErr: "needs runner.stop_command and runner.start_command",
		},
		{
			name:    "runner.control unknown",
			in:      minimal + "[runner]\ncontrol = \"runit\"\n",
			wantErr: `runner.control "runit" is not one of systemd, docker, command, none`,
		},
		{
			name:    "runner.control empty",
			in:      minimal + "[runner]\ncontrol = \"\"\n",
			wantErr: `runner.control "" is not one of`,
		},
		{
			name: "projects get the default files",
			in:   minimal + "[[projects]]\npath = \"g/a\"\n[[projects]]\npath = \"g/b\"\nfiles = [\"ci/nix.yml\", \".gitlab-ci.yml\"]\nlabels = [\"deps\"]\nassignees = [\"ops\"]\nautomerge = false\n",
			want: withDefaults(func(c *config.Config) {
				c.Projects = []config.Project{
					{Path: "g/a", Files: []string{".gitlab-ci.yml"}},
					{Path: "g/b", Files: []string{"ci/nix.yml", ".gitlab-ci.yml"}, Labels: []string{"deps"}, Assignees: []string{"ops"}, Automerge: boolPtr(false)},
				}
			}),
		},
		{
			name:    "duplicate project",
			in:      minimal + "[[projects]]\npath = \"g/a\"\n[[projects]]\npath = \"g/a\"\n",
			wantErr: `project "g/a" is listed twice`,
		},
		{
			name:    "project without path",
			in:      minimal + "[[projects]]\nfiles = [\"ci.yml\"]\n",
			wantErr: "a [[projects]] entry has no path",
		},
		{
			name: "durations parse",
			in:   minimal + "[watch]\nsettle = \"90s\"\n[store]\nlock_timeout = \"1h30m\"\n[runner]\ndrain_timeout = \"45m\"\n",
			want: withDefaults(func(c *config.Config) {
				c.Watch.Settle = config.Duration(90 * time.Second)
				c.Store.LockTimeout = config.Duration(90 * time.Minute)
				c.Runner.DrainTimeout = config.Duration(45 * time.Minute)
			}),
		},
		{
			name:    "bad duration names the key",
			in:      minimal + "[watch]\nsettle = \"9x\"\n",
			wantErr: "watch.settle",
		},
		{
			name:    "duration without unit",
			in:      minimal + "[store]\nlock_timeout = \"90\"\n",
			wantErr: "store.lock_timeout",
		},
		{
			name:    "negative min_interval",
			in:      minimal + "[reconcile]\nmin_interval = \"-1s\"\n",
			wantErr: "reconcile.min_interval -1s is negative",
		},
		{
			name:    "no connections allowed",
			in:      minimal + "[server]\nmax_connections = 0\n",
			wantErr: "server.max_connections 0 is not a positive number",
		},
		{
			name:    "metrics listener on the main address",
			in:      minimal + "[server]\nlisten = \"127.0.0.1:9000\"\nmetrics_listen = \"127.0.0.1:9000\"\n",
			wantErr: `server.metrics_listen "127.0.0.1:9000" is server.listen`,
		},
		{
			name: "pace and metrics listener",
			in:   minimal + "[server]\nmetrics_listen = \"127.0.0.1:9780\"\nmax_connections = 64\n[reconcile]\nmin_interval = \"30s\"\n",
			want: withDefaults(func(c *config.Config) {
				c.Server.MetricsListen = "127.0.0.1:9780"
				c.Server.MaxConnections = 64
				c.Reconcile.MinInterval = config.Duration(30 * time.Second)
			}),
		},
		{
			name:    "duration as a bare integer",
			in:      minimal + "[runner]\ndrain_timeout = 90\n",
			wantErr: "runner.drain_timeout",
		},
		{
			name: "every section set",
			in: minimal + `[server]
listen = "0.0.0.0:9000"
state_dir = "/var/lib/h"
[watch]
image = "registry.example.com/nix"
platforms = ["linux/amd64", "linux/arm64"]
schedule = "*/5 * * * *"
insecure = true
[propose]
branch_prefix = "bot/"
max_open = 3
labels = ["nix"]
automerge = true
[store]
dir = "/data/nix"
platform = "linux/arm64"
[runner]
unit = "runner.service"
config_file = "/etc/r/config.toml"
name = "nix-1"
id = 42
pin_image = false
metrics_url = "http://127.0.0.1:9252/metrics"
[reconcile]
schedule = "@every 1h"
`,
			want: withDefaults(func(c *config.Config) {
				c.Server.Listen, c.Server.StateDir = "0.0.0.0:9000", "/var/lib/h"
				c.Watch.Image = "registry.example.com/nix"
				c.Watch.Platforms = []string{"linux/amd64", "linux/arm64"}
				c.Watch.Schedule, c.Watch.Insecure = "*/5 * * * *", true
				c.Propose = config.Propose{BranchPrefix: "bot/", MaxOpen: 3, Labels: []string{"nix"}, Automerge: true}
				c.Store.Dir, c.Store.Platform = "/data/nix", "linux/arm64"
				c.Runner.Unit, c.Runner.ConfigFile, c.Runner.Name = "runner.service", "/etc/r/config.toml", "nix-1"
				c.Runner.ID, c.Runner.PinImage = 42, false
				c.Runner.MetricsURL = "http://127.0.0.1:9252/metrics"
				c.Reconcile.Schedule = "@every 1h"
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse: no error, want one containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %q, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("Parse error repeats a secret from the input: %q", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("Parse error spans lines: %q", err)
				}
				if diff := cmp.Diff(config.Config{}, got); diff != "" {
					t.Errorf("Parse returned a config with its error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseDoesNotShareDefaults checks that editing one parsed config
// changes neither the package defaults nor the next parse.
func TestParseDoesNotShareDefaults(t *testing.T) {
	in := minimal + "[[projects]]\npath = \"g/a\"\n"
	first, err := config.Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	first.Projects[0].Files[0] = "changed.yml"
	first.Watch.Platforms[0] = "changed/arch"

	if diff := cmp.Diff([]string{".gitlab-ci.yml"}, config.DefaultFiles); diff != "" {
		t.Errorf("DefaultFiles changed (-want +got):\n%s", diff)
	}
	second, err := config.Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff([]string{".gitlab-ci.yml"}, second.Projects[0].Files); diff != "" {
		t.Errorf("second parse's files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"linux/amd64"}, second.Watch.Platforms); diff != "" {
		t.Errorf("second parse's platforms (-want +got):\n%s", diff)
	}
}

func TestDurationText(t *testing.T) {
	d := config.Duration(90 * time.Minute)
	b, err := d.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText: %v", err)
	}
	var back config.Duration
	if err := back.UnmarshalText(b); err != nil {
		t.Fatalf("UnmarshalText(%q): %v", b, err)
	}
	if back.D() != 90*time.Minute {
		t.Errorf("round trip of %q = %v, want 1h30m", b, back.D())
	}
}
