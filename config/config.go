// Package config holds hydrafy's typed configuration: the TOML file's shape,
// its defaults and its validation. Only cmd/hydrafy reads files and the
// environment; every other package receives these values.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole of hydrafy.toml.
type Config struct {
	Server    Server    `toml:"server"`
	GitLab    GitLab    `toml:"gitlab"`
	Bot       Bot       `toml:"bot"`
	Watch     Watch     `toml:"watch"`
	Propose   Propose   `toml:"propose"`
	Projects  []Project `toml:"projects"`
	Store     Store     `toml:"store"`
	Runner    Runner    `toml:"runner"`
	Reconcile Reconcile `toml:"reconcile"`
	GC        GC        `toml:"gc"`
}

// Server configures `hydrafy serve`'s HTTP listener and its secrets.
type Server struct {
	Listen            string `toml:"listen"`
	StateDir          string `toml:"state_dir"`
	WebhookSecretFile string `toml:"webhook_secret_file"`
	ResyncTokenFile   string `toml:"resync_token_file"`
	// Webhooks serves /webhooks/gitlab; false is a poll-only host, which
	// needs no webhook secret and finds changes by its resync schedule.
	Webhooks bool `toml:"webhooks"`
	// MetricsListen, when set, serves /metrics and /status on an address
	// of their own instead of Listen.
	MetricsListen string `toml:"metrics_listen"`
	// MetricsTokenFile holds the bearer token /metrics and /status then
	// require (or HYDRAFY_METRICS_TOKEN); none: they are open.
	MetricsTokenFile string `toml:"metrics_token_file"`
	// MaxConnections bounds the open connections of each listener.
	MaxConnections int `toml:"max_connections"`

	// WebhookSecret, ResyncToken and MetricsToken come from the
	// environment or the *_file keys, never from the TOML file itself.
	WebhookSecret Secret `toml:"-"`
	ResyncToken   Secret `toml:"-"`
	MetricsToken  Secret `toml:"-"`
}

// GitLab says where the GitLab instance is and how to authenticate.
type GitLab struct {
	URL       string `toml:"url"`
	TokenFile string `toml:"token_file"`

	Token Secret `toml:"-"`
}

// Watch configures the registry watcher.
type Watch struct {
	Image     string   `toml:"image"`
	Tag       string   `toml:"tag"`
	Semver    string   `toml:"semver"`
	Platforms []string `toml:"platforms"`
	Settle    Duration `toml:"settle"`
	Schedule  string   `toml:"schedule"`
	// Insecure allows plain HTTP to the registry (loopback registries always may).
	Insecure bool `toml:"insecure"`
}

// Propose configures merge requests opened by the proposer.
type Propose struct {
	BranchPrefix string   `toml:"branch_prefix"`
	MaxOpen      int      `toml:"max_open"`
	Labels       []string `toml:"labels"`
	Automerge    bool     `toml:"automerge"`
}

// Project is one watched GitLab project.
type Project struct {
	Path      string   `toml:"path"`
	Files     []string `toml:"files"`
	Labels    []string `toml:"labels"`
	Assignees []string `toml:"assignees"`
	Automerge *bool    `toml:"automerge"`
}

// Store locates the live store on the runner host.
type Store struct {
	Dir string `toml:"dir"`
	// Platform of the images to seed; "" is linux and this host's arch.
	Platform    string   `toml:"platform"`
	LockTimeout Duration `toml:"lock_timeout"`
	// Mirrors are pull-through caches or GitLab Dependency Proxies of the
	// watched image's registry ("HOST[:PORT][/PATH]"), tried in order
	// before the registry itself; the canonical name is what gets pinned.
	Mirrors []string `toml:"mirrors"`
	// Merge is how new paths get into the live store: "drain" (pause,
	// drain and stop the runner around the merge) or "live" (merge while
	// jobs run, under the locks Nix itself takes).
	Merge string `toml:"merge"`
}

// Runner says how to drain, stop and start the gitlab-runner on this host.
type Runner struct {
	// Control is one of "systemd", "docker", "command" or "none".
	Control      string   `toml:"control"`
	Unit         string   `toml:"unit"`
	Container    string   `toml:"container"`
	DockerHost   string   `toml:"docker_host"`
	StopCommand  []string `toml:"stop_command"`
	StartCommand []string `toml:"start_command"`
	ConfigFile   string   `toml:"config_file"`
	// Name selects the [[runners]] entry of config.toml; empty means all.
	Name         string   `toml:"name"`
	ID           int      `toml:"id"`
	TokenFile    string   `toml:"token_file"`
	DrainTimeout Duration `toml:"drain_timeout"`
	// PinImage also pins [runners.docker] image of the managed runners to
	// the newest digest the default branches pin.
	PinImage bool `toml:"pin_image"`
	// DefaultImage, a digest reference of the watched image, is seeded
	// whatever the projects pin (the runners' own default image).
	DefaultImage string `toml:"default_image"`
	MetricsURL   string `toml:"metrics_url"`
	Token        Secret `toml:"-"`
}

// Reconcile configures this host's reconciler, its periodic resync and
// the pace of passes.
type Reconcile struct {
	// Enabled: this host reconciles its own store and runner. false is a
	// bot-only host, which has no [store] or [runner].
	Enabled  bool   `toml:"enabled"`
	Schedule string `toml:"schedule"`
	// MinInterval is the least time between the starts of two passes
	// (webhooks, resyncs and schedules coalesce meanwhile); an explicit
	// POST /resync?wait=1 does not wait for it.
	MinInterval Duration `toml:"min_interval"`
}

// GC configures the garbage collection of the live store: what it keeps
// and when it runs. Whatever a kept path references is kept too.
type GC struct {
	// Schedule is the maintenance window (cron) in which the daemon drains
	// the runner and collects; empty: none.
	Schedule string `toml:"schedule"`
	// MinFree collects whenever the store's filesystem has less free:
	// bytes ("20GiB") or a share of it ("10%"); empty: never for space.
	MinFree Threshold `toml:"min_free"`
	// MaxSize, when set, also deletes kept build results, oldest first,
	// until the store's NAR size is at most this.
	MaxSize Size `toml:"max_size"`
	// KeepImages keeps every image seeded within this long.
	KeepImages Duration `toml:"keep_images"`
	// KeepBuilds keeps every build result registered within this long.
	KeepBuilds Duration `toml:"keep_builds"`
	// RootsFile lists further store paths to keep, one a line.
	RootsFile string `toml:"roots_file"`
}

// Default returns the configuration every file starts from.
func Default() Config {
	return Config{
		Server: Server{
			Listen:         "127.0.0.1:8780",
			StateDir:       "/var/lib/hydrafy",
			Webhooks:       true,
			MaxConnections: 512,
		},
		Bot: Bot{Enabled: true},
		Watch: Watch{
			Image:     "nixos/nix",
			Tag:       "latest",
			Platforms: []string{"linux/amd64"},
			Settle:    Duration(time.Hour),
			Schedule:  "17 * * * *",
		},
		Propose: Propose{
			BranchPrefix: "hydrafy/",
			MaxOpen:      10,
		},
		Store: Store{
			Dir:         "/srv/nix-backup",
			Platform:    "",
			LockTimeout: Duration(10 * time.Minute),
			Merge:       "drain",
		},
		Runner: Runner{
			Control:      "systemd",
			Unit:         "gitlab-runner.service",
			Container:    "gitlab-runner",
			DockerHost:   "unix:///var/run/docker.sock",
			ConfigFile:   "/etc/gitlab-runner/config.toml",
			DrainTimeout: Duration(3 * time.Hour),
		},
		Reconcile: Reconcile{
			Enabled:     true,
			Schedule:    "@every 15m",
			MinInterval: Duration(5 * time.Second),
		},
		GC: GC{
			MinFree:    Threshold{Percent: 10},
			KeepImages: Duration(30 * 24 * time.Hour),
			KeepBuilds: Duration(14 * 24 * time.Hour),
		},
	}
}

// DefaultFiles is the list of CI files a project gets when it names none.
var DefaultFiles = []string{".gitlab-ci.yml"}

// Parse reads TOML over the defaults. Unknown keys are an error naming the key.
func Parse(data []byte) (Config, error) {
	c := Default()
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, fmt.Errorf("parsing config: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("unknown config key %s", strings.Join(keys, ", "))
	}
	if c.Watch.Semver != "" {
		if md.IsDefined("watch", "tag") {
			return Config{}, errors.New("config: watch.tag and watch.semver are exclusive")
		}
		c.Watch.Tag = ""
	}
	if err := c.settleRoles(md); err != nil {
		return Config{}, err
	}
	for i := range c.Projects {
		if len(c.Projects[i].Files) == 0 {
			c.Projects[i].Files = append([]string(nil), DefaultFiles...)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.GitLab.URL == "" {
		return errors.New("config: gitlab.url is required")
	}
	u, err := url.Parse(c.GitLab.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("config: gitlab.url is not an http or https URL with a host")
	case u.User != nil:
		// A password in the URL would be a secret in the file.
		return errors.New("config: gitlab.url must not hold credentials; use HYDRAFY_GITLAB_TOKEN or gitlab.token_file")
	}
	if !filepath.IsAbs(c.Store.Dir) {
		// The runner's config.toml mounts it into jobs by this path.
		return fmt.Errorf("config: store.dir %q is not an absolute path", c.Store.Dir)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"watch.settle", c.Watch.Settle},
		{"store.lock_timeout", c.Store.LockTimeout},
		{"runner.drain_timeout", c.Runner.DrainTimeout},
		{"reconcile.min_interval", c.Reconcile.MinInterval},
		{"gc.keep_images", c.GC.KeepImages},
		{"gc.keep_builds", c.GC.KeepBuilds},
	} {
		if d.v < 0 {
			return fmt.Errorf("config: %s %s is negative", d.key, d.v.D())
		}
	}
	if c.Server.MaxConnections < 1 {
		return fmt.Errorf("config: server.max_connections %d is not a positive number", c.Server.MaxConnections)
	}
	if c.Server.MetricsListen != "" && c.Server.MetricsListen == c.Server.Listen {
		return fmt.Errorf("config: server.metrics_listen %q is server.listen; leave it out to serve /metrics there", c.Server.MetricsListen)
	}
	switch c.Store.Merge {
	case "drain", "live":
	default:
		return fmt.Errorf("config: store.merge %q is not one of drain, live", c.Store.Merge)
	}
	switch c.Runner.Control {
	case "systemd", "docker", "command", "none":
	default:
		return fmt.Errorf("config: runner.control %q is not one of systemd, docker, command, none", c.Runner.Control)
	}
	if c.Runner.Control == "command" && (len(c.Runner.StopCommand) == 0 || len(c.Runner.StartCommand) == 0) {
		return errors.New("config: runner.control = \"command\" needs runner.stop_command and runner.start_command")
	}
	if err := CheckMirrors(c.Store.Mirrors); err != nil {
		return fmt.Errorf("config: store.mirrors: %w", err)
	}
	if d := c.Runner.DefaultImage; d != "" && !strings.Contains(d, "@sha256:") {
		return fmt.Errorf("config: runner.default_image %q is not a digest reference (IMAGE@sha256:…)", d)
	}
	seen := map[string]bool{}
	for _, p := range c.Projects {
		if p.Path == "" {
			return errors.New("config: a [[projects]] entry has no path")
		}
		if seen[p.Path] {
			return fmt.Errorf("config: project %q is listed twice", p.Path)
		}
		seen[p.Path] = true
	}
	return nil
}

// mirrorRE is a registry host with an optional port and path prefix.
var mirrorRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)

// CheckMirrors reports the first mirror that is not HOST[:PORT][/PATH].
func CheckMirrors(mirrors []string) error {
	for _, m := range mirrors {
		if !mirrorRE.MatchString(m) {
			return fmt.Errorf("mirror %q is not HOST[:PORT][/PATH] (no scheme, tag or digest), such as mirror.gcr.io or gitlab.example.com/group/dependency_proxy/containers", m)
		}
	}
	return nil
}

// Load reads the file at path and fills the secrets from env (a lookup
// function such as os.LookupEnv) or from the *_file keys.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, err
	}
	if err := c.loadSecrets(env); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) loadSecrets(env func(string) (string, bool)) error {
	for _, s := range []struct {
		dst  *Secret
		env  string
		key  string
		file string
	}{
		{&c.Server.WebhookSecret, "HYDRAFY_WEBHOOK_SECRET", "server.webhook_secret_file", c.Server.WebhookSecretFile},
		{&c.Server.ResyncToken, "HYDRAFY_RESYNC_TOKEN", "server.resync_token_file", c.Server.ResyncTokenFile},
		{&c.Server.MetricsToken, "HYDRAFY_METRICS_TOKEN", "server.metrics_token_file", c.Server.MetricsTokenFile},
		{&c.GitLab.Token, "HYDRAFY_GITLAB_TOKEN", "gitlab.token_file", c.GitLab.TokenFile},
		{&c.Runner.Token, "HYDRAFY_RUNNER_TOKEN", "runner.token_file", c.Runner.TokenFile},
	} {
		v, err := readSecret(env, s.env, s.key, s.file)
		if err != nil {
			return err
		}
		*s.dst = v
	}
	return nil
}

// readSecret returns the environment variable name if it is set and not
// empty, else the trimmed content of file (key names it in errors).
func readSecret(env func(string) (string, bool), name, key, file string) (Secret, error) {
	if v, ok := env(name); ok && v != "" {
		return Secret(v), nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading %s (or set %s): %w", key, name, err)
	}
	return Secret(strings.TrimSpace(string(b))), nil
}
