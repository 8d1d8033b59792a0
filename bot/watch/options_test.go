package watch

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/config"
)

func TestNewRejects(t *testing.T) {
	base := Options{Image: "nixos/nix", Tag: "latest", Platforms: []string{"linux/amd64"}}
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Image = "" }, "watch: image is empty"},
		{func(o *Options) { o.Image = "Nixos/Nix" }, `watch: image "Nixos/Nix": `},
		{func(o *Options) { o.Semver = "~2.24" }, "watch: tag and semver are exclusive"},
		{func(o *Options) { o.Tag = "" }, "watch: neither tag nor semver is set"},
		{func(o *Options) { o.Tag, o.Semver = "", "~two" }, `watch: semver "~two": `},
		{func(o *Options) { o.Platforms = []string{"amd64"} }, `watch: platform "amd64" is not os/arch[/variant]`},
		{func(o *Options) { o.Schedule = "every hour" }, `watch: schedule "every hour": `},
		{func(o *Options) { o.Settle = -time.Second }, "watch: settle -1s is negative"},
	} {
		o := base
		tc.change(&o)
		_, err := New(o)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v) error %v, want %q", o, err, tc.want)
		}
	}
	if _, err := New(FromConfig(config.Default().Watch)); err != nil {
		t.Errorf("New with the default config: %v", err)
	}
}

func TestRepositoryScheme(t *testing.T) {
	for _, tc := range []struct {
		image    string
		insecure bool
		scheme   string
	}{
		{"nixos/nix", false, "https"},
		{"127.0.0.1:5000/nixos/nix", false, "http"},
		{"localhost:5000/nixos/nix", false, "http"},
		{"[::1]:5000/nixos/nix", false, "http"},
		{"registry.example:5000/nixos/nix", false, "https"},
		{"registry.example:5000/nixos/nix", true, "http"},
	} {
		repo, err := repository(Options{Image: tc.image, Insecure: tc.insecure})
		if err != nil {
			t.Fatal(err)
		}
		if got := repo.Scheme(); got != tc.scheme {
			t.Errorf("%s (insecure %v): scheme %s, want %s", tc.image, tc.insecure, got, tc.scheme)
		}
	}
	repo, err := repository(Options{Image: "nixos/nix"})
	if err != nil || repo.Tag("latest").Name() != "index.docker.io/nixos/nix:latest" {
		t.Errorf("nixos/nix is %v (%v), want Docker Hub", repo, err)
	}
}
