package watch

import (
	"sort"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// recheckNewest is how many of the newest release tags are resolved again
// on every lookup, cache or not: those are the tags that still move while
// a release's images are being pushed.
const recheckNewest = 3

// versionTag finds the newest release tag (X.Y.Z) of the repository that
// points at digest, as Renovate's digest pinning does, so that references
// that carry a version can name the digest's version. tags is the tag list
// of this check (nil: it is listed here, once). It resolves tags with
// HEAD requests, newest first, and stops at the first match; cache maps a
// tag to the digest it was last seen at and is updated. "" when no release
// tag points at digest.
func (w *Watcher) versionTag(ro []remote.Option, tags []string, digest string, cache map[string]string) (string, error) {
	if tags == nil {
		var err error
		if tags, err = remote.List(w.repo, ro...); err != nil {
			return "", failed("listing tags of", w.opts.Image, err)
		}
	}
	type release struct {
		tag string
		v   *semver.Version
	}
	var rels []release
	for _, t := range tags {
		if !releaseTag.MatchString(t) {
			continue
		}
		if v, err := semver.NewVersion(t); err == nil {
			rels = append(rels, release{t, v})
		}
	}
	sort.Slice(rels, func(i, j int) bool {
		if c := rels[i].v.Compare(rels[j].v); c != 0 {
			return c > 0
		}
		return rels[i].tag < rels[j].tag // "2.24.1" before "v2.24.1"
	})
	for i, r := range rels {
		d, ok := cache[r.tag]
		if !ok || i < recheckNewest {
			desc, _, err := w.head(ro, w.repo.Tag(r.tag))
			if err != nil {
				return "", failed("resolving", w.opts.Image+":"+r.tag, err)
			}
			d = desc.Digest.String()
			cache[r.tag] = d
		}
		if d == digest {
			return r.tag, nil
		}
	}
	return "", nil
}
