package image_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// pass lets the test push through a wrapped registry before it bites.
type gate struct{ on atomic.Bool }

func (g *gate) wrap(bite func(w http.ResponseWriter, r *http.Request, next http.Handler)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !g.on.Load() {
				next.ServeHTTP(w, r)
				return
			}
			bite(w, r, next)
		})
	}
}

func TestStageErrors(t *testing.T) {
	img, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 1}), "amd64")
	anon := authn.NewMultiKeychain()

	plain := nixtest.Registry(t)
	nixtest.PushImage(t, plain+"/nixos/nix:1", img)
	notNix, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	nixtest.PushImage(t, plain+"/library/debian:12", notNix)

	var unauth gate
	unauthHost := nixtest.RegistryWith(t, unauth.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	nixtest.PushImage(t, unauthHost+"/nixos/nix:1", img)
	unauth.on.Store(true)

	var denied gate
	deniedHost := nixtest.RegistryWith(t, denied.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"no"}]}`, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
	nixtest.PushImage(t, deniedHost+"/nixos/nix:1", img)
	denied.on.Store(true)

	var limited gate
	limitedHost := nixtest.RegistryWith(t, limited.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
	}))
	nixtest.PushImage(t, limitedHost+"/nixos/nix:1", img)
	limited.on.Store(true)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name, ref, platform, want string
		is                        error
	}{
		{"unknown tag", plain + "/nixos/nix:nope", "", "unknown tag nope", nil},
		{"unknown digest", plain + "/nixos/nix@sha256:" + strings.Repeat("ab", 32), "", "unknown digest sha256:abab", nil},
		{"unknown repository", plain + "/nixos/other:1", "", "not found", nil},
		{"no such platform", plain + "/nixos/nix:1", "linux/s390x", "is for linux/amd64, not linux/s390x", nil},
		{"401", unauthHost + "/nixos/nix:1", "", "wants credentials or refused them (401 unauthorized)", nil},
		{"403", deniedHost + "/nixos/nix:1", "", "403 forbidden", nil},
		{"429 persists", limitedHost + "/nixos/nix:1", "", "429 too many requests", nil},
		{"unreachable", closed + "/nixos/nix:1", "", "cannot reach registry " + closed, nil},
		{"not a Nix image", plain + "/library/debian:12", "", "no nix/var/nix/db/db.sqlite", image.ErrNotNix},
		{"bad reference", "nixos/nix:UPPER:x", "", "parsing image reference", nil},
		{"bad platform", plain + "/nixos/nix:1", "linux/amd64/v1/x/y", "parsing platform", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := t.TempDir()
			_, err := stage(t, tc.ref, image.Options{Platform: tc.platform, StageIn: in, Keychain: anon, Retries: 2})
			if err == nil {
				t.Fatal("staged, want an error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err spans several lines: %q", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.is)
			}
			assertEmpty(t, in)
		})
	}
}

// TestStageRetryAfter: a registry that rate-limits twice with Retry-After
// is waited for as long as it asks, then the stage succeeds.
func TestStageRetryAfter(t *testing.T) {
	img, paths := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 1}), "amd64")
	var g gate
	var mu sync.Mutex
	var limitedAt []time.Time
	host := nixtest.RegistryWith(t, g.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		if strings.Contains(r.URL.Path, "/manifests/") && len(limitedAt) < 2 {
			limitedAt = append(limitedAt, time.Now())
			mu.Unlock()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		mu.Unlock()
		next.ServeHTTP(w, r)
	}))
	nixtest.PushImage(t, host+"/nixos/nix:1", img)
	g.on.Store(true)
	start := time.Now()
	st, err := stage(t, host+"/nixos/nix:1", image.Options{Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Paths) != len(paths) {
		t.Errorf("staged %d paths, want %d", len(st.Paths), len(paths))
	}
	if len(limitedAt) != 2 {
		t.Fatalf("registry rate-limited %d times, want 2", len(limitedAt))
	}
	if gap := limitedAt[1].Sub(limitedAt[0]); gap < time.Second {
		t.Errorf("retried after %v, Retry-After asked for 1s", gap)
	}
	if time.Since(start) < 2*time.Second {
		t.Errorf("stage took %v: the two Retry-After waits were not honoured", time.Since(start))
	}
}

// TestStageCorruptLayer: a blob whose bytes do not match its digest fails
// the stage and leaves nothing behind.
func TestStageCorruptLayer(t *testing.T) {
	img, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 1}), "amd64")
	layers, _ := img.Layers()
	victim, _ := layers[1].Digest()
	var g gate
	host := nixtest.RegistryWith(t, g.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+victim.String()) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			b[len(b)/2] ^= 0xff
			w.Header().Set("Content-Length", rec.Header().Get("Content-Length"))
			w.WriteHeader(rec.Code)
			w.Write(b)
			return
		}
		next.ServeHTTP(w, r)
	}))
	nixtest.PushImage(t, host+"/nixos/nix:1", img)
	g.on.Store(true)
	in := t.TempDir()
	_, err := stage(t, host+"/nixos/nix:1", image.Options{StageIn: in})
	if err == nil || !strings.Contains(err.Error(), victim.String()) {
		t.Fatalf("err = %v, want a failure naming layer %s", err, victim)
	}
	assertEmpty(t, in)
}

// TestStageCancel: cancelling while layers download stops the stage and
// removes the staging dir.
func TestStageCancel(t *testing.T) {
	img, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 6, FilesPerPath: 1}), "amd64")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var g gate
	var blobs atomic.Int32
	host := nixtest.RegistryWith(t, g.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet && blobs.Add(1) == 3 {
			cancel() // the user presses Ctrl-C while layers are arriving
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	}))
	nixtest.PushImage(t, host+"/nixos/nix:1", img)
	g.on.Store(true)
	in := t.TempDir()
	st, err := image.Stage(ctx, host+"/nixos/nix:1", image.Options{StageIn: in, Parallel: 2})
	if err == nil {
		st.Close()
		t.Fatal("staged despite the cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	assertEmpty(t, in)
}

// TestStagePullLimit: a 429 whose ratelimit-remaining is 0 (Docker Hub's
// pull quota used up for its window) is not retried: the stage stops at
// once with a line that says so.
func TestStagePullLimit(t *testing.T) {
	img, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 1}), "amd64")
	var g gate
	var limited atomic.Int32
	host := nixtest.RegistryWith(t, g.wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			limited.Add(1)
			w.Header().Set("Ratelimit-Limit", "100;w=21600")
			w.Header().Set("Ratelimit-Remaining", "0;w=21600")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}`, http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	}))
	nixtest.PushImage(t, host+"/nixos/nix:1", img)
	g.on.Store(true)
	_, err := stage(t, host+"/nixos/nix:1", image.Options{Keychain: authn.NewMultiKeychain()})
	want := "registry pull limit reached: 0 of 100 pulls left per 6h0m0s"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("stage: %v, want one line with %q", err, want)
	}
	if n := limited.Load(); n != 1 {
		t.Errorf("the registry was asked %d times, want 1 (no retry once the quota is used up)", n)
	}
}
