package image_test

import (
	"net/http"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// TestStageThroughMirrors pulls one digest through mirrors with two
// in-process registries and a few misbehaving ones: a mirror that lacks
// the image, one that refuses, one that serves another image under the
// digest. The staged image is the canonical digest every time, and the
// canonical registry serves no blob when a mirror has the image.
func TestStageThroughMirrors(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 3, FilesPerPath: 2})
	img, want := nixImage(t, spec, "amd64")
	other, _ := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "2.25.0", Paths: 2, FilesPerPath: 2}), "amd64")
	canon := nixtest.NewReg(t)
	host := canon.Host
	digest := nixtest.PushImage(t, host+"/nixos/nix:2.24.9", img)
	ref := host + "/nixos/nix@" + digest

	full := nixtest.Registry(t)
	nixtest.PushImage(t, full+"/nixos/nix:2.24.9", img)
	empty := nixtest.Registry(t)
	denied := nixtest.RegistryWith(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":[{"code":"DENIED","message":"denied"}]}`))
		})
	})
	// The liar answers a request for the digest with another image's
	// manifest.
	liar := nixtest.RegistryWith(t, func(reg http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/manifests/"+digest) {
				r.URL.Path = strings.TrimSuffix(r.URL.Path, digest) + "2.25.0"
			}
			reg.ServeHTTP(w, r)
		})
	})
	nixtest.PushImage(t, liar+"/nixos/nix:2.25.0", other)
	canon.Requests()

	for _, tc := range []struct {
		name       string
		ref        string
		mirrors    []string
		from       string
		canonBlobs bool
	}{
		{"missing and refusing mirrors fall back", ref, []string{empty, denied + "/proxy/containers"}, "", true},
		{"a lying mirror falls back", ref, []string{liar}, "", true},
		{"mirror with the image", ref, []string{empty, full}, full + "/nixos/nix@" + digest, false},
		{"tag resolved at the registry, pulled from the mirror", host + "/nixos/nix:2.24.9", []string{full}, full + "/nixos/nix@" + digest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := stage(t, tc.ref, image.Options{Platform: "linux/amd64", Mirrors: tc.mirrors})
			if err != nil {
				t.Fatal(err)
			}
			got := canon.Requests()
			if st.Digest != digest || st.Ref != tc.ref || st.From != tc.from || strings.Join(st.Paths, " ") != strings.Join(want, " ") {
				t.Errorf("staged %s from %q as %s, paths %v; want %s from %q", st.Digest, st.From, st.Ref, st.Paths, digest, tc.from)
			}
			if (got["GET blobs"] > 0) != tc.canonBlobs || (!tc.canonBlobs && got["GET manifests"] > 0) {
				t.Errorf("canonical registry requests %v (blobs wanted: %v)", got, tc.canonBlobs)
			}
		})
	}

	// Nobody has the digest: one line that names the registry's answer
	// and the mirrors.
	gone := host + "/nixos/nix@sha256:" + strings.Repeat("0", 64)
	_, err := stage(t, gone, image.Options{Platform: "linux/amd64", Mirrors: []string{empty, denied}})
	if err == nil || !strings.Contains(err.Error(), "unknown digest") || !strings.Contains(err.Error(), "the mirrors failed too: "+empty+", "+denied) || strings.Contains(err.Error(), "\n") {
		t.Errorf("digest nowhere: %v", err)
	}
}
