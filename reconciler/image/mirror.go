package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// stageMirrored pulls ref through o.Mirrors in turn and falls back to
// ref's own registry. A tag is first resolved to its digest at the
// registry itself with a HEAD request (which Docker Hub does not count as a
// pull), so that every mirror is asked for that digest; go-containerregistry
// checks what a mirror serves against it, and the staged image records the
// digest and the reference as given.
func stageMirrored(ctx context.Context, ref string, r name.Reference, want *v1.Platform, o Options) (*Staged, error) {
	digest := ""
	if d, ok := r.(name.Digest); ok {
		digest = d.DigestStr()
	} else if desc, err := remote.Head(r, remoteOptions(ctx, o)...); err == nil {
		digest = desc.Digest.String()
	} else if ctx.Err() != nil {
		return nil, registryError(r, o.Retries, err)
	} else {
		o.Log.Warn("resolving the tag at the registry failed; asking the mirrors for the tag", "ref", r.String(), "err", err)
	}
	var failed []string
	for _, m := range o.Mirrors {
		mr, err := mirrorRef(m, r, digest)
		if err != nil {
			return nil, err
		}
		st, err := stageFrom(ctx, ref, mr, want, o)
		if err == nil && digest != "" && st.Digest != digest {
			st.Close()
			err = fmt.Errorf("mirror %s served %s for %s", m, st.Digest, digest)
		}
		if err == nil {
			st.From = mr.String()
			return st, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrNotNix) || errors.Is(err, store.ErrBadRow) {
			return nil, err
		}
		o.Log.Warn("pulling through a mirror failed; trying the next source", "mirror", m, "err", err)
		failed = append(failed, m)
	}
	pull := r
	if digest != "" {
		pull = r.Context().Digest(digest)
	}
	st, err := stageFrom(ctx, ref, pull, want, o)
	if err != nil {
		return nil, &lineError{msg: fmt.Sprintf("%v (the mirrors failed too: %s)", err, strings.Join(failed, ", ")), err: err}
	}
	return st, nil
}

// mirrorRef is r's repository at mirror m: by digest when known, else by
// r's tag.
func mirrorRef(m string, r name.Reference, digest string) (name.Reference, error) {
	base := strings.TrimSuffix(m, "/") + "/" + r.Context().RepositoryStr()
	s := base + ":" + r.Identifier()
	if digest != "" {
		s = base + "@" + digest
	}
	ref, err := parseRef(s)
	if err != nil {
		return nil, fmt.Errorf("mirror %q: %w", m, err)
	}
	return ref, nil
}
