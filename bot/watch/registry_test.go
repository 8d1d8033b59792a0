package watch

import (
	"context"
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

// counter counts registry requests by method and kind ("HEAD manifests",
// "GET blobs", "GET tags", "GET ping").
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Method+" "+kind(r.URL.Path)]++
}

// snapshot returns the counts so far and starts over.
func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	if n == nil {
		n = map[string]int{}
	}
	return n
}

func kind(path string) string {
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

// testRegistry is an in-process registry whose requests pass through a
// counter and an optional wrapper (to answer 429 or 405 where a test wants).
type testRegistry struct {
	host  string
	count *counter
	// wrap, when set, answers a request instead of the registry by
	// returning true.
	mu   sync.Mutex
	wrap func(w http.ResponseWriter, r *http.Request) bool
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr := &testRegistry{count: &counter{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.count.add(r)
		tr.mu.Lock()
		wrap := tr.wrap
		tr.mu.Unlock()
		if wrap != nil && wrap(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

func (tr *testRegistry) setWrap(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.wrap = f
	tr.mu.Unlock()
}

func (tr *testRegistry) repo() string { return tr.host + "/nixos/nix" }

// testImage returns a random image whose config names platform and carries a
// creation time and a Nix version label.
func testImage(t testing.TB, platform string, created time.Time, version string) v1.Image {
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
		cf.Config.Labels = map[string]string{nixVersionLabel: version}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.MediaType(img, types.DockerManifestSchema2)
}

// pushIndex pushes a Docker manifest list with one fresh image per platform
// to tag and returns its digest.
func (tr *testRegistry) pushIndex(t testing.TB, tag string, platforms ...string) string {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, ps := range platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        testImage(t, ps, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "2.32.1"),
			Descriptor: v1.Descriptor{Platform: p},
		})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList), adds...)
	ref, err := name.NewTag(tr.repo()+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// retag points tag to at what tag from points at.
func (tr *testRegistry) retag(t testing.TB, from, to string) {
	t.Helper()
	src, err := name.NewTag(tr.repo()+":"+from, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewTag(tr.repo()+":"+to, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(dst, desc); err != nil {
		t.Fatal(err)
	}
}

// pushImage pushes a single-manifest image for platform to tag.
func (tr *testRegistry) pushImage(t testing.TB, tag, platform string) string {
	t.Helper()
	img := testImage(t, platform, time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), "")
	ref, err := name.NewTag(tr.repo()+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// watcher returns a Watcher on tr with fast retries; change adjusts opts.
func (tr *testRegistry) watcher(t testing.TB, change func(*Options)) *Watcher {
	t.Helper()
	opts := Options{
		Image:     tr.repo(),
		Tag:       "latest",
		Platforms: []string{"linux/amd64", "linux/arm64"},
		Settle:    time.Hour,
		Retry:     Retry{Attempts: 4, Base: time.Millisecond, Max: time.Minute},
	}
	if change != nil {
		change(&opts)
	}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func check(t testing.TB, w *Watcher, prev State, now time.Time) (Result, State) {
	t.Helper()
	res, next, err := w.Check(context.Background(), prev, now)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res, next
}
