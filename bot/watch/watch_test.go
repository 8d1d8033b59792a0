package watch

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func TestCheckTagMoves(t *testing.T) {
	tr := newTestRegistry(t)
	w := tr.watcher(t, nil)
	first := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")

	res, st := check(t, w, State{}, t0)
	if !res.Changed || res.Digest != first || res.Ready || !res.FirstSeen.Equal(t0) {
		t.Fatalf("first check: %+v", res)
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, res.Platforms); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	if want := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC); !res.Created.Equal(want) || res.NixVersion != "2.32.1" {
		t.Errorf("created %v version %q, want %v 2.32.1", res.Created, res.NixVersion, want)
	}

	res, st = check(t, w, st, t0.Add(90*time.Minute))
	if res.Changed || res.Digest != first || !res.Ready || res.StableFor != 90*time.Minute {
		t.Fatalf("unchanged after settle: %+v", res)
	}

	second := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
	moved := t0.Add(2 * time.Hour)
	res, st = check(t, w, st, moved)
	if !res.Changed || res.Digest != second || res.Ready || !res.FirstSeen.Equal(moved) || res.Wait != time.Hour {
		t.Fatalf("after the tag moved: %+v", res)
	}
	if len(st.Tags) != 1 {
		t.Fatalf("state holds %d tags, want 1: %+v", len(st.Tags), st)
	}
	for key, obs := range st.Tags {
		if key != tr.Repo()+":latest" || obs.Digest != second || !obs.FirstSeen.Equal(moved) || !obs.LastChecked.Equal(moved) {
			t.Errorf("state %s: %+v", key, obs)
		}
	}
}

func TestCheckSemver(t *testing.T) {
	tr := newTestRegistry(t)
	digests := map[string]string{}
	for _, tag := range []string{
		"2.23.5", "2.24.1", "2.24.9", "2.24.10", "2.25.0", "3.0.0", "2.19.9",
		"2.24.11-amd64", "2.24.11-arm64", "2.24.12-rc1", "2.24", "2", "latest", "master", "v2.24.3",
	} {
		digests[tag] = tr.pushIndex(t, tag, "linux/amd64", "linux/arm64")
	}
	for _, tc := range []struct {
		rng  string
		want string
	}{
		{"~2.24", "2.24.10"},
		{"^2", "2.25.0"},
		{">=2.20 <3", "2.25.0"},
		{">=2.20, <2.24", "2.23.5"},
		{"2.24.1", "2.24.1"},
		{"~2.24.3", "2.24.10"},
		{"<2.20", "2.19.9"},
		{">=3", "3.0.0"},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			w := tr.watcher(t, func(o *Options) { o.Tag, o.Semver = "", tc.rng })
			tr.Requests()
			res, _ := check(t, w, State{}, t0)
			if res.Tag != tc.want || res.Digest != digests[tc.want] || res.VersionTag != tc.want {
				t.Errorf("picked %s %s, want %s %s", res.Tag, res.Digest, tc.want, digests[tc.want])
			}
			if n := tr.Requests()["GET tags"]; n != 1 {
				t.Errorf("listed tags %d times, want 1", n)
			}
		})
	}

	w := tr.watcher(t, func(o *Options) { o.Tag, o.Semver = "", "~4.1" })
	_, _, err := w.Check(t.Context(), State{}, t0)
	if err == nil || err.Error() != `no release tag of `+tr.Repo()+` matches "~4.1" among 15 tags` {
		t.Errorf("no match: got %v", err)
	}
}

// TestCheckFindsVersionTag: in tag mode, a new digest costs one tag list
// and HEADs of release tags, newest first, until one points at it; tags
// resolved before are cached (but for the newest few, which may still
// move), and a digest whose version is known costs nothing more.
func TestCheckFindsVersionTag(t *testing.T) {
	tr := newTestRegistry(t)
	for _, tag := range []string{"2.20.0", "2.21.0", "2.22.0", "2.23.0", "2.24.9"} {
		tr.pushIndex(t, tag, "linux/amd64", "linux/arm64")
	}
	b := tr.pushIndex(t, "2.25.0", "linux/amd64", "linux/arm64")
	tr.Retag(t, "2.25.0", "latest")
	tr.Retag(t, "2.25.0", "2.25")
	w := tr.watcher(t, nil)
	tr.Requests()

	res, st := check(t, w, State{}, t0)
	if res.Digest != b || res.VersionTag != "2.25.0" {
		t.Fatalf("first check: digest %s version %q, want %s 2.25.0", res.Digest, res.VersionTag, b)
	}
	if got := tr.Requests(); got["GET tags"] != 1 || got["HEAD manifests"] != 2 {
		t.Errorf("first check: %v, want one tag list and two HEADs (latest, 2.25.0)", got)
	}

	c := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
	tr.Requests()
	res, st = check(t, w, st, t0.Add(time.Hour))
	if res.Digest != c || res.VersionTag != "" {
		t.Fatalf("after latest moved: digest %s version %q, want %s and none", res.Digest, res.VersionTag, c)
	}
	if got := tr.Requests(); got["GET tags"] != 1 || got["HEAD manifests"] != 1+6 {
		t.Errorf("new digest without a release: %v, want one tag list and 1+6 HEADs", got)
	}
	res, st = check(t, w, st, t0.Add(70*time.Minute))
	if got := tr.Requests(); res.VersionTag != "" || got["GET tags"] != 1 || got["HEAD manifests"] != 1+recheckNewest {
		t.Errorf("settling digest without a release: version %q, %v, want one tag list and 1+%d HEADs (the rest cached)", res.VersionTag, got, recheckNewest)
	}
	tr.Retag(t, "latest", "2.26.0")
	res, st = check(t, w, st, t0.Add(80*time.Minute))
	if res.VersionTag != "2.26.0" || st.Releases["2.26.0"] != c || st.Releases["2.20.0"] == "" {
		t.Errorf("after the release was tagged: version %q, cache %v", res.VersionTag, st.Releases)
	}
	tr.Requests()
	res, _ = check(t, w, st, t0.Add(3*time.Hour))
	if got := tr.Requests(); res.VersionTag != "2.26.0" || got["GET tags"] != 0 || got["HEAD manifests"] != 1 {
		t.Errorf("known version: %q, %v, want no tag list and one HEAD", res.VersionTag, got)
	}
}

func TestCheckMissingPlatform(t *testing.T) {
	tr := newTestRegistry(t)
	w := tr.watcher(t, nil)
	tr.pushIndex(t, "latest", "linux/amd64")

	res, st := check(t, w, State{}, t0)
	res, st = check(t, w, st, t0.Add(3*time.Hour))
	if res.Ready || res.Reason != "index lacks linux/arm64" || res.StableFor != 3*time.Hour {
		t.Fatalf("index without arm64: %+v", res)
	}
	if diff := cmp.Diff([]string{"linux/arm64"}, res.MissingPlatforms); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}

	full := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64/v8")
	res, st = check(t, w, st, t0.Add(4*time.Hour))
	if res.Ready || res.Digest != full || len(res.MissingPlatforms) != 0 {
		t.Fatalf("complete index, just seen: %+v", res)
	}
	res, _ = check(t, w, st, t0.Add(5*time.Hour))
	if !res.Ready {
		t.Fatalf("complete index after settle: %+v", res)
	}
}

func TestCheckSingleImage(t *testing.T) {
	tr := newTestRegistry(t)
	d := tr.pushImage(t, "latest", "linux/arm64")
	for _, tc := range []struct {
		want  []string
		ready bool
	}{
		{[]string{"linux/arm64"}, true},
		{[]string{"linux/amd64"}, false},
	} {
		w := tr.watcher(t, func(o *Options) { o.Platforms, o.Settle = tc.want, 0 })
		res, _ := check(t, w, State{}, t0)
		if res.Digest != d || res.Ready != tc.ready || !cmp.Equal(res.Platforms, []string{"linux/arm64"}) {
			t.Errorf("want %v: %+v", tc.want, res)
		}
		if want := time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC); !res.Created.Equal(want) {
			t.Errorf("created %v, want %v", res.Created, want)
		}
	}
}

// TestCheckChurn re-pushes the tag inside the settle window: each change
// restarts the clock, and only a digest left alone for the settle time is
// ready.
func TestCheckChurn(t *testing.T) {
	tr := newTestRegistry(t)
	w := tr.watcher(t, nil)
	var st State
	var last string
	for i, step := range []struct {
		at     time.Duration
		push   bool
		stable time.Duration
		ready  bool
	}{
		{at: 0, push: true, stable: 0},
		{at: 20 * time.Minute, stable: 20 * time.Minute},
		{at: 30 * time.Minute, push: true, stable: 0},
		{at: 50 * time.Minute, push: true, stable: 0},
		{at: 100 * time.Minute, stable: 50 * time.Minute},
		{at: 110 * time.Minute, stable: time.Hour, ready: true},
		{at: 3 * time.Hour, stable: 3*time.Hour - 50*time.Minute, ready: true},
	} {
		if step.push {
			last = tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
		}
		var res Result
		res, st = check(t, w, st, t0.Add(step.at))
		if res.Digest != last || res.Changed != step.push || res.StableFor != step.stable || res.Ready != step.ready {
			t.Errorf("step %d at %s: got changed %v stable %s ready %v (%s), want %v %s %v",
				i, step.at, res.Changed, res.StableFor, res.Ready, res.Reason, step.push, step.stable, step.ready)
		}
	}
}

// TestCheckHeadOnly counts requests per method: a digest already observed
// costs one manifest HEAD (after the registry ping that authentication
// starts with) and no GET of a manifest or blob.
func TestCheckHeadOnly(t *testing.T) {
	tr := newTestRegistry(t)
	w := tr.watcher(t, nil)
	tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
	tr.Requests()

	_, st := check(t, w, State{}, t0)
	first := tr.Requests()
	// A new digest: HEAD, then the index, one image manifest and its config.
	// And one tag list, for the digest's release tag.
	if diff := cmp.Diff(map[string]int{"GET ping": 1, "HEAD manifests": 1, "GET manifests": 2, "GET blobs": 1, "GET tags": 1}, first); diff != "" {
		t.Errorf("first check requests (-want +got):\n%s", diff)
	}
	for i := range 3 {
		_, st = check(t, w, st, t0.Add(time.Duration(i+1)*time.Hour))
		got := tr.Requests()
		if diff := cmp.Diff(map[string]int{"GET ping": 1, "HEAD manifests": 1}, got); diff != "" {
			t.Errorf("check %d requests (-want +got):\n%s", i+2, diff)
		}
	}
}

func TestCheckHeadUnsupported(t *testing.T) {
	for _, code := range []int{405, 404, 501} {
		tr := newTestRegistry(t)
		w := tr.watcher(t, func(o *Options) { o.Settle = 0 })
		d := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
		tr.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodHead && nixtest.RequestKind(r.URL.Path) == "manifests" {
				rw.WriteHeader(code)
				return true
			}
			return false
		})
		tr.Requests()
		res, _ := check(t, w, State{}, t0)
		if res.Digest != d || !res.Ready {
			t.Errorf("HEAD answered %d: %+v", code, res)
		}
		got := tr.Requests()
		// The fallback GET already holds the index: one more GET for the
		// image manifest, one for its config.
		if got["HEAD manifests"] != 1 || got["GET manifests"] != 2 {
			t.Errorf("HEAD answered %d: requests %v", code, got)
		}
	}
}

func TestCheckTagMissing(t *testing.T) {
	tr := newTestRegistry(t)
	tr.pushIndex(t, "other", "linux/amd64")
	w := tr.watcher(t, nil)
	prev := State{Version: 1, Tags: map[string]Observation{"x": {Digest: "sha256:1"}}}
	_, st, err := w.Check(t.Context(), prev, t0)
	if err == nil {
		t.Fatal("Check of a missing tag succeeded")
	}
	if !strings.HasPrefix(err.Error(), "resolving "+tr.Repo()+":latest: ") {
		t.Errorf("error %q does not name the tag", err)
	}
	if diff := cmp.Diff(prev, st); diff != "" {
		t.Errorf("state changed on error (-want +got):\n%s", diff)
	}
}

// TestCheckConfigUnavailable: an index's config blob is display only, so a
// registry that will not serve it still gets the index checked; a single
// image's config names its platform, so there it is an error.
func TestCheckConfigUnavailable(t *testing.T) {
	tr := newTestRegistry(t)
	idx := tr.pushIndex(t, "latest", "linux/amd64", "linux/arm64")
	tr.pushImage(t, "single", "linux/amd64")
	tr.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if nixtest.RequestKind(r.URL.Path) == "blobs" {
			rw.WriteHeader(http.StatusNotFound)
			return true
		}
		return false
	})

	res, _ := check(t, tr.watcher(t, func(o *Options) { o.Settle = 0 }), State{}, t0)
	if res.Digest != idx || !res.Ready || !res.Created.IsZero() || res.NixVersion != "" {
		t.Errorf("index without config: %+v", res)
	}

	w := tr.watcher(t, func(o *Options) { o.Tag = "single" })
	_, _, err := w.Check(t.Context(), State{}, t0)
	if err == nil || !strings.HasPrefix(err.Error(), "inspecting "+tr.Repo()+":single@sha256:") {
		t.Errorf("single image without config: error %v", err)
	}
}
