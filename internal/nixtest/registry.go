package nixtest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// Registry starts go-containerregistry's in-process registry on loopback
// and returns its host:port.
func Registry(t testing.TB) string {
	t.Helper()
	return RegistryWith(t, nil)
}

// RegistryWith is Registry behind wrap, which gets the registry's handler
// and returns the one that answers (to count, refuse or falsify
// requests); nil serves the registry as it is.
func RegistryWith(t testing.TB, wrap func(reg http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// PushImage pushes img as ref (e.g. "127.0.0.1:1234/nixos/nix:2.24") and returns its digest.
func PushImage(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PushIndex pushes idx as ref and returns the index digest.
func PushIndex(t testing.TB, ref string, idx v1.ImageIndex) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// Release is a nixos/nix-shaped release pushed to a test registry.
type Release struct {
	Digest string   // the one-platform index's digest
	Paths  []string // its store paths, sorted
	Index  v1.ImageIndex
}

// PushRelease builds a nixos/nix-shaped release of version with real Nix
// (six store paths, three shared by every release), pushes it to the
// registry at host as HOST/nixos/nix:VERSION, one platform (linux/amd64),
// and also under each of tags.
func PushRelease(t testing.TB, host, version string, tags ...string) Release {
	t.Helper()
	b := NixImage(t, synth.Release(synth.ReleaseOptions{Version: version, Paths: 6, Shared: 3, Base: "nixpkgs", FilesPerPath: 3}), synth.ImageOptions{Arch: "amd64", NixVersion: version})
	idx := Index(t, b.Image)
	r := Release{Digest: PushIndex(t, host+"/nixos/nix:"+version, idx), Paths: b.Paths, Index: idx}
	for _, tag := range tags {
		PushIndex(t, host+"/nixos/nix:"+tag, idx)
	}
	return r
}
