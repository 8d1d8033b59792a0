package seed_test

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// nixImage builds spec's store with real Nix and lays it out as nixos/nix
// does; it returns the image and its store paths.
func nixImage(t *testing.T, spec synth.Spec) (v1.Image, []string) {
	t.Helper()
	img, paths, _ := nixImageRoot(t, spec)
	return img, paths
}

// nixImageRoot is nixImage that also returns the root the store was built in.
func nixImageRoot(t *testing.T, spec synth.Spec) (v1.Image, []string, string) {
	t.Helper()
	b := nixtest.NixImage(t, spec, synth.ImageOptions{NixVersion: spec.Seed})
	return b.Image, b.Paths, b.Root
}

// entry is one tar entry of a hand-made layer.
type entry struct {
	hdr  tar.Header
	data string
}

// treeEntries lists the tree at dir as tar entries named name/….
func treeEntries(t *testing.T, dir, name string) []entry {
	t.Helper()
	var out []entry
	nixtest.Walk(t, dir, func(p, rel string, fi fs.FileInfo) error {
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if rel != "." {
			hdr.Name += "/" + rel
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		e := entry{hdr: *hdr}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.data = string(b)
		}
		out = append(out, e)
		return nil
	})
	return out
}

// layerOf makes a layer from entries, in their order.
func layerOf(t *testing.T, es []entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		} else {
			h.Size = 0
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendLayers appends hand-made layers to img.
func appendLayers(t *testing.T, img v1.Image, layers ...[]entry) v1.Image {
	t.Helper()
	var adds []mutate.Addendum
	for _, es := range layers {
		adds = append(adds, mutate.Addendum{Layer: layerOf(t, es), History: v1.History{CreatedBy: "hand"}})
	}
	out, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func reg(name, data string, mode int64) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data: data}
}

func dir(name string, mode int64) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o555}}
}

func special(name string, typ byte) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Devmajor: 1, Devminor: 3}}
}

// find returns the index of the entry whose name ends in suffix.
func find(t *testing.T, es []entry, suffix string) int {
	t.Helper()
	for i, e := range es {
		if strings.HasSuffix(e.hdr.Name, suffix) {
			return i
		}
	}
	t.Fatalf("no entry ends in %s", suffix)
	return -1
}
