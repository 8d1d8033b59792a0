package watch

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/Masterminds/semver/v3"
)

// tracker says which tag the watcher follows: a fixed moving tag, or the
// newest release tag within a semver range.
type tracker struct {
	tag   string
	rng   string
	match *semver.Constraints
}

func newTracker(opts Options) (tracker, error) {
	switch {
	case opts.Tag != "" && opts.Semver != "":
		return tracker{}, errors.New("watch: tag and semver are exclusive")
	case opts.Semver != "":
		c, err := semver.NewConstraint(opts.Semver)
		if err != nil {
			return tracker{}, fmt.Errorf("watch: semver %q: %w", opts.Semver, err)
		}
		return tracker{rng: opts.Semver, match: c}, nil
	case opts.Tag != "":
		return tracker{tag: opts.Tag}, nil
	default:
		return tracker{}, errors.New("watch: neither tag nor semver is set")
	}
}

// releaseTag is a plain release: three numbers without leading zeros, an
// optional leading v and nothing after. Arch-suffixed tags ("2.24.10-amd64") are the per-arch
// halves of a release's index and never tracked; moving tags ("2.24",
// "latest") are not releases.
var releaseTag = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// pickTag returns the newest release tag that the range admits, or "" when
// none does. Of two spellings of one version ("2.24.1", "v2.24.1") the
// plain one wins.
func pickTag(tags []string, match *semver.Constraints) string {
	var best *semver.Version
	bestTag := ""
	for _, t := range tags {
		if !releaseTag.MatchString(t) {
			continue
		}
		v, err := semver.NewVersion(t)
		if err != nil || !match.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) || (v.Equal(best) && t < bestTag) {
			best, bestTag = v, t
		}
	}
	return bestTag
}
