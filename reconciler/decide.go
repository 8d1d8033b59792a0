package reconciler

import (
	"slices"
	"strings"
	"time"
)

// desiredDigests returns the sorted digests that the observation pins: every
// pin with a digest on a default or proposal branch, the runner default
// image's digest when it has one, and the watcher's candidate. A proposed
// digest is seeded before its merge request is merged: a merge only adds
// paths, so that is safe.
func desiredDigests(obs Observation) []string {
	out := pinnedDigests(obs)
	if d := digestOf(obs.Candidate); d != "" {
		out = append(out, d)
	}
	for _, p := range obs.Projects {
		for _, pin := range p.Proposed {
			if pin.Digest != "" {
				out = append(out, pin.Digest)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// pinnedDigests returns the sorted digests that jobs use now: the pins of
// the default branches and the runner default image's digest. config.toml
// pins one of these, never a digest that is only proposed.
func pinnedDigests(obs Observation) []string {
	var out []string
	for _, p := range obs.Projects {
		for _, pin := range p.Pins {
			if pin.Digest != "" {
				out = append(out, pin.Digest)
			}
		}
	}
	if d := digestOf(obs.Default); d != "" {
		out = append(out, d)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// digestOf returns the "sha256:…" part of a digest reference, or "".
func digestOf(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok && strings.HasPrefix(d, "sha256:") {
		return d
	}
	return ""
}

// plan decides which desired digests a pass seeds. Digests already seeded
// need nothing. A digest that failed terminally is skipped by periodic
// passes and retried by explicit ones (webhook, resync, start-up), since
// those signal that something may have changed.
func plan(desired []string, seeded map[string]bool, stalled map[string]string, explicit bool) (missing, skipped []string) {
	for _, d := range desired {
		switch {
		case seeded[d]:
		case stalled[d] != "" && !explicit:
			skipped = append(skipped, d)
		default:
			missing = append(missing, d)
		}
	}
	return missing, skipped
}

// pickImage chooses the digest config.toml pins: among the desired digests
// whose stores are seeded (an image without its store would break jobs),
// the one first seen most recently; ties go to the one more projects pin,
// then to the greater digest so that the choice is stable.
func pickImage(desired []string, seeded map[string]bool, firstSeen map[string]time.Time, pins map[string]int) string {
	best := ""
	for _, d := range desired {
		if !seeded[d] {
			continue
		}
		if best == "" || newer(d, best, firstSeen, pins) {
			best = d
		}
	}
	return best
}

func newer(a, b string, firstSeen map[string]time.Time, pins map[string]int) bool {
	if ta, tb := firstSeen[a], firstSeen[b]; !ta.Equal(tb) {
		return ta.After(tb)
	}
	if pins[a] != pins[b] {
		return pins[a] > pins[b]
	}
	return a > b
}

// pinCounts counts how many pins name each digest.
func pinCounts(obs Observation) map[string]int {
	m := map[string]int{}
	for _, p := range obs.Projects {
		for _, pin := range p.Pins {
			if pin.Digest != "" {
				m[pin.Digest]++
			}
		}
	}
	return m
}

// markSeen records now as the first sighting of every desired digest not
// seen before and forgets digests nobody pins any more.
func markSeen(firstSeen map[string]time.Time, desired []string, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(desired))
	for _, d := range desired {
		if t, ok := firstSeen[d]; ok {
			out[d] = t
		} else {
			out[d] = now
		}
	}
	return out
}

// needsRecovery reports whether a pass cut short (the process was killed)
// may have left the runner paused or stopped.
func needsRecovery(in *InFlight) bool {
	return in != nil && (in.Paused || in.Stopped)
}

// explicit reports whether any reason asks for terminal failures to be
// retried: everything but the periodic resync. A start-up counts, since a
// restart is how an operator says something changed (a store seeded by
// hand, a fixed config).
func explicit(reasons []Reason) bool {
	for _, r := range reasons {
		if r.Kind != KindPeriodic {
			return true
		}
	}
	return false
}
