package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// nixVersionLabel is the label that carries the Nix version in images
// that are labelled (nixos/nix from 2.30 on).
const nixVersionLabel = "org.opencontainers.image.version"

// session returns the remote options for the requests of one check: they
// share one puller, so the registry is pinged and a token fetched once per
// check rather than once per request.
func (w *Watcher) session(ctx context.Context) ([]remote.Option, error) {
	ro := append(w.remote[:len(w.remote):len(w.remote)], remote.WithContext(ctx))
	p, err := remote.NewPuller(ro...)
	if err != nil {
		return nil, err
	}
	return append(ro, remote.Reuse(p)), nil
}

// head resolves ref to its manifest descriptor with a HEAD request, which
// Docker Hub does not count as a pull. Only where the registry does not
// support HEAD does it GET the manifest, and then also returns its bytes.
func (w *Watcher) head(ro []remote.Option, ref name.Reference) (v1.Descriptor, []byte, error) {
	desc, err := remote.Head(ref, ro...)
	if err == nil {
		return *desc, nil, nil
	}
	if !headUnsupported(err) {
		return v1.Descriptor{}, nil, err
	}
	w.log.Debug("manifest HEAD unsupported, falling back to GET", "ref", ref.String(), "err", err)
	got, err := remote.Get(ref, ro...)
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	return got.Descriptor, got.Manifest, nil
}

// headUnsupported tells a registry that cannot answer manifest HEAD
// requests usefully from one that failed: a 405 or 501, a 404 (some
// registries answer HEAD with 404 and GET with the manifest), or an answer
// without Content-Type, Content-Length or Docker-Content-Digest, which
// go-containerregistry reports only as an error message.
func headUnsupported(err error) bool {
	if _, ok := statusError(err); ok {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusNotFound:
			return true
		}
		return false
	}
	return strings.Contains(err.Error(), "response did not include")
}

// details is what the watcher learns about a digest once, when it is first
// seen: its platforms and, from the first wanted platform's config, its
// creation time and Nix version.
type details struct {
	platforms  []string
	created    v1.Time
	nixVersion string
}

// inspect reads what the platforms decision needs about desc: for an index,
// its manifest list (one GET) and, on a best-effort basis, the config of
// one image (a manifest and a blob GET); for a single image, its config. manifest holds the manifest
// bytes if head already had to GET them.
func (w *Watcher) inspect(ctx context.Context, ro []remote.Option, repo name.Repository, desc v1.Descriptor, manifest []byte) (details, error) {
	ref := repo.Digest(desc.Digest.String())
	switch {
	case desc.MediaType.IsIndex():
		if manifest == nil {
			got, err := remote.Get(ref, ro...)
			if err != nil {
				return details{}, err
			}
			manifest = got.Manifest
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(manifest))
		if err != nil {
			return details{}, fmt.Errorf("parsing index %s: %w", desc.Digest, err)
		}
		d := details{platforms: indexPlatforms(idx)}
		child, ok := w.firstChild(idx)
		if !ok {
			return d, nil
		}
		// The creation time and version are for display only: a registry
		// that will not serve them must not hold back a complete index.
		cfg, err := w.config(ro, repo.Digest(child.String()))
		if err != nil {
			if ctx.Err() != nil {
				return details{}, ctx.Err()
			}
			w.log.Warn("reading image config", "image", repo.String(), "digest", child.String(), "err", err)
			return d, nil
		}
		d.created, d.nixVersion = cfg.Created, cfg.Config.Labels[nixVersionLabel]
		return d, nil
	case desc.MediaType.IsImage():
		cfg, err := w.config(ro, ref)
		if err != nil {
			return details{}, err
		}
		p := cfg.Platform()
		if p == nil || p.OS == "" {
			return details{}, fmt.Errorf("image %s has no platform in its config", desc.Digest)
		}
		return details{
			platforms:  []string{p.String()},
			created:    cfg.Created,
			nixVersion: cfg.Config.Labels[nixVersionLabel],
		}, nil
	default:
		return details{}, fmt.Errorf("manifest %s has unsupported media type %q", desc.Digest, desc.MediaType)
	}
}

// firstChild picks the image whose config is read: the first wanted
// platform's, else the first image with a platform.
func (w *Watcher) firstChild(idx *v1.IndexManifest) (v1.Hash, bool) {
	for _, want := range w.platforms {
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.MediaType.IsImage() && m.Platform.Satisfies(want) {
				return m.Digest, true
			}
		}
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.MediaType.IsImage() && m.Platform.OS != "unknown" {
			return m.Digest, true
		}
	}
	return v1.Hash{}, false
}

func (w *Watcher) config(ro []remote.Option, ref name.Reference) (*v1.ConfigFile, error) {
	img, err := remote.Image(ref, ro...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config of %s: %w", ref, err)
	}
	return cfg, nil
}
