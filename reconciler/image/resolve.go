package image

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// resolved is a reference pinned to one platform's image.
type resolved struct {
	ref      name.Reference
	digest   string // the index digest when ref names an index, else the manifest's
	manifest string
	img      v1.Image
}

// parseRef parses an image reference; loopback registries are reached over
// plain HTTP.
func parseRef(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", s, err)
	}
	if loopback(ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(s, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("parsing image reference %q: %w", s, err)
		}
	}
	return ref, nil
}

func loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// remoteOptions are the registry options of one Stage: rate limits are
// retried with Retry-After by rateLimited, so go-containerregistry's own
// retry leaves 429 and 503 alone.
func remoteOptions(ctx context.Context, o Options) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithTransport(&rateLimited{next: o.Transport, retries: o.Retries, maxWait: o.MaxRetryWait}),
		remote.WithRetryStatusCodes(408, 500, 502, 504),
		remote.WithRetryBackoff(remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 3}),
	}
}

// resolve looks ref up and picks the image of the wanted platform.
func resolve(ref name.Reference, want *v1.Platform, ropts []remote.Option, retries int) (*resolved, error) {
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, registryError(ref, retries, err)
	}
	r := &resolved{ref: ref, digest: desc.Digest.String()}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, registryError(ref, retries, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, registryError(ref, retries, err)
		}
		var have []string
		var pick *v1.Descriptor
		for i, m := range im.Manifests {
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue // attestations
			}
			have = append(have, m.Platform.String())
			if pick == nil && m.MediaType.IsImage() && m.Platform.Satisfies(*want) {
				pick = &im.Manifests[i]
			}
		}
		if pick == nil {
			sort.Strings(have)
			return nil, fmt.Errorf("pulling %s: no %s image in the index (it has %s)", ref, want, strings.Join(have, ", "))
		}
		img, err := idx.Image(pick.Digest)
		if err != nil {
			return nil, registryError(ref, retries, err)
		}
		r.img, r.manifest = img, pick.Digest.String()
		return r, nil
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("pulling %s: %s is not an image manifest", ref, desc.MediaType)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, registryError(ref, retries, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, registryError(ref, retries, err)
	}
	if got := cf.Platform(); got != nil && got.OS != "" && got.Architecture != "" && !got.Satisfies(*want) {
		return nil, fmt.Errorf("pulling %s: the image is for %s, not %s", ref, got, want)
	}
	r.img, r.manifest = img, r.digest
	return r, nil
}
