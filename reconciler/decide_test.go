package reconciler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	dA = "sha256:aaaa"
	dB = "sha256:bbbb"
	dC = "sha256:cccc"
)

func TestDesiredDigests(t *testing.T) {
	for _, tc := range []struct {
		name string
		obs  Observation
		want []string
	}{
		{"nothing", Observation{}, nil},
		{"tag only pins contribute nothing", Observation{Projects: []ProjectPins{{Path: "a", Pins: []Pin{{Tag: "latest"}}}}}, nil},
		{"deduplicated and sorted", Observation{Projects: []ProjectPins{
			{Path: "a", Pins: []Pin{{Digest: dB}, {Digest: dA}}},
			{Path: "b", Pins: []Pin{{Digest: dB}}},
		}}, []string{dA, dB}},
		{"default image digest", Observation{Default: "nixos/nix@" + dC}, []string{dC}},
		{"default image without digest", Observation{Default: "nixos/nix:latest"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, desiredDigests(tc.obs)); diff != "" {
				t.Errorf("desiredDigests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		desired               []string
		seeded                map[string]bool
		stalled               map[string]string
		explicit              bool
		wantMissing, wantSkip []string
	}{
		{"all seeded", []string{dA}, map[string]bool{dA: true}, nil, false, nil, nil},
		{"one missing", []string{dA, dB}, map[string]bool{dA: true}, nil, false, []string{dB}, nil},
		{"stalled skipped on periodic", []string{dA, dB}, nil, map[string]string{dB: "hash mismatch"}, false, []string{dA}, []string{dB}},
		{"stalled retried on webhook", []string{dA, dB}, nil, map[string]string{dB: "hash mismatch"}, true, []string{dA, dB}, nil},
		{"nothing desired", nil, map[string]bool{dA: true}, nil, true, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, s := plan(tc.desired, tc.seeded, tc.stalled, tc.explicit)
			if diff := cmp.Diff(tc.wantMissing, m); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSkip, s); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPickImage(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		desired   []string
		seeded    map[string]bool
		firstSeen map[string]time.Time
		pins      map[string]int
		want      string
	}{
		{"none seeded", []string{dA}, nil, nil, nil, ""},
		{"newest first seen", []string{dA, dB}, map[string]bool{dA: true, dB: true},
			map[string]time.Time{dA: t0.Add(time.Hour), dB: t0}, nil, dA},
		{"newest not seeded is passed over", []string{dA, dB}, map[string]bool{dB: true},
			map[string]time.Time{dA: t0.Add(time.Hour), dB: t0}, nil, dB},
		{"tie: more pins", []string{dA, dB}, map[string]bool{dA: true, dB: true},
			map[string]time.Time{dA: t0, dB: t0}, map[string]int{dA: 3, dB: 1}, dA},
		{"tie: stable by digest", []string{dA, dB}, map[string]bool{dA: true, dB: true},
			map[string]time.Time{dA: t0, dB: t0}, nil, dB},
		{"seeded but no longer desired", []string{dA}, map[string]bool{dA: true, dC: true},
			map[string]time.Time{dA: t0, dC: t0.Add(time.Hour)}, nil, dA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickImage(tc.desired, tc.seeded, tc.firstSeen, tc.pins); got != tc.want {
				t.Errorf("pickImage = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMarkSeen(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	got := markSeen(map[string]time.Time{dA: t0, dC: t0}, []string{dA, dB}, now)
	want := map[string]time.Time{dA: t0, dB: now}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("markSeen (-want +got):\n%s", diff)
	}
}

func TestNeedsRecovery(t *testing.T) {
	for _, tc := range []struct {
		in   *InFlight
		want bool
	}{
		{nil, false},
		{&InFlight{Run: "x"}, false},
		{&InFlight{Run: "x", Paused: true}, true},
		{&InFlight{Run: "x", Paused: true, Stopped: true}, true},
	} {
		if got := needsRecovery(tc.in); got != tc.want {
			t.Errorf("needsRecovery(%+v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestExplicit(t *testing.T) {
	for _, tc := range []struct {
		reasons []Reason
		want    bool
	}{
		{nil, false},
		{[]Reason{{Kind: KindPeriodic}}, false},
		{[]Reason{{Kind: KindPeriodic}, {Kind: KindStartup}}, true},
		{[]Reason{{Kind: KindPeriodic}, {Kind: KindWebhook}}, true},
		{[]Reason{{Kind: KindResync}}, true},
		{[]Reason{{Kind: KindManual}}, true},
	} {
		if got := explicit(tc.reasons); got != tc.want {
			t.Errorf("explicit(%v) = %v, want %v", tc.reasons, got, tc.want)
		}
	}
}
