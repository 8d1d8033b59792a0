package watch

import (
	"fmt"
	"strings"
	"time"
)

// decide says whether the observed digest may be proposed at now: every
// wanted platform present and the digest unchanged for settle. When not
// ready, wait is how long until it could be (0 when only a new digest can
// change the answer) and reason says why not.
func decide(obs Observation, missing []string, settle time.Duration, now time.Time) (ready bool, wait time.Duration, reason string) {
	if obs.Digest == "" {
		return false, 0, "no digest observed"
	}
	if len(missing) > 0 {
		return false, 0, "index lacks " + strings.Join(missing, ", ")
	}
	stable := stableFor(obs, now)
	if stable < settle {
		return false, settle - stable, fmt.Sprintf("settling: unchanged for %s of %s", round(stable), round(settle))
	}
	return true, 0, fmt.Sprintf("unchanged for %s (settle %s), all platforms present", round(stable), round(settle))
}

// stableFor is how long the digest has been seen unchanged; a first-seen
// time in the future (a clock step) counts as just seen.
func stableFor(obs Observation, now time.Time) time.Duration {
	return max(now.Sub(obs.FirstSeen), 0)
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }
