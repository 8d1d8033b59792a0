package nixtest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Reg is an in-process registry (go-containerregistry's) whose requests
// are counted by method and kind, and which a test can make refuse or
// falsify answers with Intercept.
type Reg struct {
	// Host is the registry's host:port on loopback.
	Host string

	mu        sync.Mutex
	counts    map[string]int
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

// NewReg starts a counting registry on loopback, closed with the test.
func NewReg(t testing.TB) *Reg {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	g := &Reg{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if g.counts == nil {
			g.counts = map[string]int{}
		}
		g.counts[r.Method+" "+RequestKind(r.URL.Path)]++
		intercept := g.intercept
		g.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.Host = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// Repo is the registry's nixos/nix repository, HOST/nixos/nix.
func (g *Reg) Repo() string { return g.Host + "/nixos/nix" }

// Intercept sets f to see every request before the registry: when it
// returns true it has answered and the registry does not. nil removes it.
func (g *Reg) Intercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	g.mu.Lock()
	g.intercept = f
	g.mu.Unlock()
}

// Requests returns the requests counted since the last call, by method
// and kind ("HEAD manifests", "GET blobs", "GET tags", "GET ping"), and
// starts counting again.
func (g *Reg) Requests() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.counts
	g.counts = nil
	if n == nil {
		n = map[string]int{}
	}
	return n
}

// RequestKind names what a registry request path asks for: "ping",
// "manifests", "tags", "blobs" or "other".
func RequestKind(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "ping"
	case strings.Contains(path, "/manifests/"):
		return "manifests"
	case strings.HasSuffix(path, "/tags/list"):
		return "tags"
	case strings.Contains(path, "/blobs/"):
		return "blobs"
	}
	return "other"
}

// Failing answers the first n requests of kind ("manifests", "blobs", …;
// "" for any) with code, and with a Retry-After header when retryAfter is
// not empty; n < 0 answers all of them. It counts what it answered in
// answered (may be nil). Use it with Reg.Intercept: a rate-limited
// registry is Failing(kind, n, 429, "1", …).
func Failing(kind string, n int, code int, retryAfter string, answered *Counter) func(http.ResponseWriter, *http.Request) bool {
	if answered == nil {
		answered = &Counter{}
	}
	return func(w http.ResponseWriter, r *http.Request) bool {
		if kind != "" && RequestKind(r.URL.Path) != kind {
			return false
		}
		if !answered.takeBelow(n) {
			return false
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		return true
	}
}

// Counter counts concurrently.
type Counter struct {
	mu sync.Mutex
	n  int
}

// Load returns the count.
func (c *Counter) Load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *Counter) takeBelow(limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit >= 0 && c.n >= limit {
		return false
	}
	c.n++
	return true
}

// PushIndex pushes idx to the repository as tag and returns its digest.
func (g *Reg) PushIndex(t testing.TB, tag string, idx v1.ImageIndex) string {
	t.Helper()
	return PushIndex(t, g.Repo()+":"+tag, idx)
}

// PushImage pushes img to the repository as tag and returns its digest.
func (g *Reg) PushImage(t testing.TB, tag string, img v1.Image) string {
	t.Helper()
	return PushImage(t, g.Repo()+":"+tag, img)
}

// Retag points tag to at what tag from points at.
func (g *Reg) Retag(t testing.TB, from, to string) {
	t.Helper()
	src, err := name.NewTag(g.Repo()+":"+from, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewTag(g.Repo()+":"+to, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(dst, desc); err != nil {
		t.Fatal(err)
	}
}

// RandomImage returns a small random Docker image whose config names
// platform ("linux/arm64/v8") and created, and carries the Nix version
// label when version is not empty: what a watcher looks at, no store.
func RandomImage(t testing.TB, platform string, created time.Time, version string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: created}
	if version != "" {
		cf.Config.Labels = map[string]string{VersionLabel: version}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.MediaType(img, types.DockerManifestSchema2)
}

// VersionLabel is the label nixos/nix images carry their version in.
const VersionLabel = "org.opencontainers.image.version"

// RandomIndex returns a Docker manifest list of one RandomImage per
// platform.
func RandomIndex(t testing.TB, created time.Time, version string, platforms ...string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, ps := range platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: RandomImage(t, ps, created, version), Descriptor: v1.Descriptor{Platform: p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList), adds...)
}
