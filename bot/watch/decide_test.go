package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/config"
)

func TestDecide(t *testing.T) {
	seen := Observation{Digest: "sha256:aa", FirstSeen: t0}
	for _, tc := range []struct {
		name    string
		obs     Observation
		missing []string
		settle  time.Duration
		now     time.Time
		ready   bool
		wait    time.Duration
		reason  string
	}{
		{"just seen", seen, nil, time.Hour, t0, false, time.Hour, "settling: unchanged for 0s of 1h0m0s"},
		{"settling", seen, nil, time.Hour, t0.Add(10 * time.Minute), false, 50 * time.Minute, "settling: unchanged for 10m0s of 1h0m0s"},
		{"exactly settled", seen, nil, time.Hour, t0.Add(time.Hour), true, 0, "unchanged for 1h0m0s (settle 1h0m0s), all platforms present"},
		{"long settled", seen, nil, time.Hour, t0.Add(30 * time.Hour), true, 0, "unchanged for 30h0m0s (settle 1h0m0s), all platforms present"},
		{"no settle", seen, nil, 0, t0, true, 0, "unchanged for 0s (settle 0s), all platforms present"},
		{"missing platform", seen, []string{"linux/arm64"}, time.Hour, t0.Add(5 * time.Hour), false, 0, "index lacks linux/arm64"},
		{"missing two", seen, []string{"linux/arm64", "linux/riscv64"}, 0, t0, false, 0, "index lacks linux/arm64, linux/riscv64"},
		{"clock stepped back", seen, nil, time.Hour, t0.Add(-time.Hour), false, time.Hour, "settling: unchanged for 0s of 1h0m0s"},
		{"nothing observed", Observation{}, nil, 0, t0, false, 0, "no digest observed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, wait, reason := decide(tc.obs, tc.missing, tc.settle, tc.now)
			if ready != tc.ready || wait != tc.wait || reason != tc.reason {
				t.Errorf("decide = %v, %s, %q; want %v, %s, %q", ready, wait, reason, tc.ready, tc.wait, tc.reason)
			}
		})
	}
}

func TestMissingPlatforms(t *testing.T) {
	want, err := parsePlatforms([]string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		have []string
		want []string
	}{
		{[]string{"linux/amd64", "linux/arm64"}, nil},
		{[]string{"linux/amd64", "linux/arm64/v8"}, nil},
		{[]string{"linux/amd64"}, []string{"linux/arm64"}},
		{[]string{"linux/arm/v7", "windows/amd64"}, []string{"linux/amd64", "linux/arm64"}},
		{nil, []string{"linux/amd64", "linux/arm64"}},
	} {
		if diff := cmp.Diff(tc.want, missingPlatforms(tc.have, want)); diff != "" {
			t.Errorf("missingPlatforms(%v) (-want +got):\n%s", tc.have, diff)
		}
	}
}

func TestPickTag(t *testing.T) {
	tags := []string{
		"latest", "master", "2.24", "2", "nightly-2026", "2.24.10-amd64", "2.24.10-arm64",
		"2.24.11-arm64", "2.24.12-rc1", "2.24.9", "2.24.10", "2.25.0", "2.25.0+build1",
		"3.0.0", "v3.0.1", "2.20.0", "01.2.3", "2.24.x",
	}
	for _, tc := range []struct {
		rng  string
		want string
	}{
		{"~2.24", "2.24.10"},
		{"^2", "2.25.0"},
		{">=2.20 <3", "2.25.0"},
		{">=2.20, <2.24", "2.20.0"},
		{"2.24.9", "2.24.9"},
		{"=2.24.11", ""},
		{">=3", "v3.0.1"},
		{"~1", ""},
	} {
		c, err := semver.NewConstraint(tc.rng)
		if err != nil {
			t.Fatal(err)
		}
		if got := pickTag(tags, c); got != tc.want {
			t.Errorf("pickTag(%q) = %q, want %q", tc.rng, got, tc.want)
		}
	}

	c, _ := semver.NewConstraint("~2.24")
	if got := pickTag([]string{"v2.24.1", "2.24.1"}, c); got != "2.24.1" {
		t.Errorf("of v2.24.1 and 2.24.1 picked %q, want the plain one", got)
	}
}

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
