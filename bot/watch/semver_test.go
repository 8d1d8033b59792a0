package watch

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

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
