package server

import (
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDedup(2, time.Hour)
	for i, tc := range []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, false},
		{"a", time.Minute, true},
		{"b", 2 * time.Minute, false},
		{"c", 3 * time.Minute, false}, // evicts a, the least recently seen
		{"a", 4 * time.Minute, false},
		{"c", 5 * time.Minute, true},
		{"c", 2 * time.Hour, false}, // expired
	} {
		if got := d.seen(tc.key, t0.Add(tc.at)); got != tc.want {
			t.Errorf("step %d: seen(%q) = %v, want %v", i, tc.key, got, tc.want)
		}
	}
}
