package watch

import (
	"testing"
	"time"
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
