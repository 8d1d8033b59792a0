// Package demo builds the world `hydrafy demo` runs in, all on loopback and
// in one process: a registry holding two nixos/nix-shaped releases (real
// store trees with a valid db), the GitLab emulator with two watched
// projects pinned to the first release, and the files of a stand-in runner.
package demo

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// Token is the GitLab emulator's token for the bot, and RunnerToken the
// stand-in runner's authentication token. They are demo values only.
const (
	Token       = "glpat-demo-bot"
	RunnerToken = "glrt-demo-runner"
	Repository  = "nixos/nix"
)

// Release is one published nixos/nix version.
type Release struct {
	Version string
	Index   v1.ImageIndex
	Digest  string // the index digest
	Paths   int
}

// Env is the demo's world.
type Env struct {
	Dir       string // holds store/, state/, runner/
	Registry  string // host:port of the embedded registry
	GitLab    *gitlabemu.Server
	GitLabURL string
	RunnerID  int64
	Releases  []Release
	Projects  []string

	servers []*http.Server
}

// Image returns the watched repository as the embedded registry serves it.
func (e *Env) Image() string { return e.Registry + "/" + Repository }

// StoreDir is the live store (the nix-backup dir).
func (e *Env) StoreDir() string { return filepath.Join(e.Dir, "store") }

// StateDir is hydrafy's state dir.
func (e *Env) StateDir() string { return filepath.Join(e.Dir, "state") }

// RunnerDir holds the stand-in runner's config.toml and status file.
func (e *Env) RunnerDir() string { return filepath.Join(e.Dir, "runner") }

// Setup builds the world in dir: two releases (the second shares most
// store paths with the first), the registry with the first one tagged
// latest, and the GitLab emulator whose projects pin the first release.
func Setup(ctx context.Context, dir string) (*Env, error) {
	e := &Env{Dir: dir}
	for _, d := range []string{e.StateDir(), e.RunnerDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	reg, err := e.listen(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	if err != nil {
		return nil, fmt.Errorf("starting the registry: %w", err)
	}
	e.Registry = reg
	for _, v := range []string{"2.24.9", "2.25.0"} {
		r, err := buildRelease(filepath.Join(dir, "build", v), v)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("building release %s: %w", v, err)
		}
		if err := e.push(r.Index, r.Version); err != nil {
			e.Close()
			return nil, err
		}
		e.Releases = append(e.Releases, r)
	}
	if err := e.Publish(0); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.setupGitLab(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Publish moves the latest tag to release i.
func (e *Env) Publish(i int) error {
	return e.push(e.Releases[i].Index, "latest")
}

func (e *Env) push(idx v1.ImageIndex, tag string) error {
	ref, err := name.NewTag(e.Image()+":"+tag, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// buildRelease builds a synthetic nixos/nix release: 40 store paths, the
// first 34 shared by every release (85%), for amd64 and arm64.
func buildRelease(root, version string) (Release, error) {
	spec := synth.Release(synth.ReleaseOptions{Version: version, Paths: 40, Shared: 34, FilesPerPath: 12, FileSize: 4096})
	if _, err := synth.Build(root, spec); err != nil {
		return Release{}, err
	}
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if version == "2.25.0" {
		created = created.AddDate(0, 0, 14)
	}
	var imgs []v1.Image
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := synth.Image(root, synth.ImageOptions{Arch: arch, Created: created, NixVersion: version})
		if err != nil {
			return Release{}, err
		}
		imgs = append(imgs, img)
	}
	idx, err := synth.Index(imgs...)
	if err != nil {
		return Release{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return Release{}, err
	}
	return Release{Version: version, Index: idx, Digest: d.String(), Paths: len(spec.Paths)}, nil
}

// setupGitLab starts the emulator with two projects pinned to release 0
// and a runner.
func (e *Env) setupGitLab() error {
	e.GitLab = gitlabemu.New(gitlabemu.Options{})
	srv, u, err := e.GitLab.Serve("127.0.0.1:0")
	if err != nil {
		return err
	}
	e.servers = append(e.servers, srv)
	e.GitLabURL = u
	e.GitLab.AddToken(Token, "hydrafy-bot")
	e.GitLab.AddUser("alice", "Alice Maintainer", "alice@example.com")
	e.GitLab.AddToken("glpat-alice", "alice")
	old := e.Image() + "@" + e.Releases[0].Digest
	projects := map[string]map[string]string{
		"demo/webapp": {".gitlab-ci.yml": fmt.Sprintf(`# Build and test the web app with Nix.
image: %s

variables:
  NIX_IMAGE: "%s"

build:
  script:
    - nix build .#webapp
`, old, old)},
		"demo/tools": {".gitlab-ci.yml": fmt.Sprintf(`default:
  image:
    name: %s:%s
    entrypoint: [""]

check:
  script: [nix flake check]
`, e.Image(), e.Releases[0].Version+"@"+e.Releases[0].Digest)},
	}
	for _, p := range []string{"demo/webapp", "demo/tools"} {
		if _, err := e.GitLab.AddProject(p, "main", projects[p]); err != nil {
			return err
		}
		e.Projects = append(e.Projects, p)
	}
	e.RunnerID = e.GitLab.AddRunner("demo runner", RunnerToken)
	return nil
}

// HookAll points every project's webhook at url with the secret.
func (e *Env) HookAll(url, secret string) error {
	for _, p := range e.Projects {
		if _, err := e.GitLab.AddHook(p, url, secret); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	e.servers = append(e.servers, srv)
	return ln.Addr().String(), nil
}

// Close stops the registry and the emulator.
func (e *Env) Close() {
	if e.GitLab != nil {
		e.GitLab.Close()
	}
	for _, s := range e.servers {
		s.Close()
	}
}
