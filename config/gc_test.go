package config_test

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/config"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"90m", 90 * time.Minute},
		{"14d", 14 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"0", 0},
	} {
		got, err := config.ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "14", "d", "14days", "1y"} {
		if _, err := config.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestGCSection(t *testing.T) {
	base := "[gitlab]\nurl = \"https://gitlab.example.com\"\n[gc]\n"
	c, err := config.Parse([]byte(base + "min_free = \"20GiB\"\nmax_size = \"500 GB\"\nkeep_builds = \"7d\"\nschedule = \"0 3 * * 0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GC.MinFree.Bytes != 20<<30 || c.GC.MinFree.Percent != 0 {
		t.Errorf("min_free = %+v", c.GC.MinFree)
	}
	if c.GC.MaxSize != 500e9 || c.GC.KeepBuilds.D() != 7*24*time.Hour || c.GC.KeepImages.D() != 30*24*time.Hour {
		t.Errorf("gc = %+v", c.GC)
	}
	c, err = config.Parse([]byte(base + "min_free = \"15%\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.GC.MinFree.Of(1000); got != 150 {
		t.Errorf("15%% of 1000 = %d", got)
	}
	for _, tc := range []struct{ toml, want string }{
		{"min_free = \"110%\"", "percentage"},
		{"min_free = \"lots\"", "size"},
		{"max_size = \"-5GB\"", "size"},
		{"keep_builds = \"forever\"", "duration"},
		{"keep_images = \"-1d\"", "negative"},
	} {
		_, err := config.Parse([]byte(base + tc.toml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line about %s", tc.toml, err, tc.want)
		}
	}
}
