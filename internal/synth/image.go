package synth

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageOptions describe the image config of a nixos/nix-shaped image.
type ImageOptions struct {
	OS, Arch   string
	Created    time.Time
	NixVersion string // written as org.opencontainers.image.version when set
}

// Image lays out the store under root as the nixos/nix image does: one
// layer per store path with absolute entry names (/nix/store/…), then a top
// layer with relative names holding the db, the profiles, gcroots, /etc and
// root's profile link. Each store layer's history comment lists its path.
func Image(root string, opts ImageOptions) (v1.Image, error) {
	if opts.OS == "" {
		opts.OS = "linux"
	}
	if opts.Arch == "" {
		opts.Arch = "amd64"
	}
	entries, err := os.ReadDir(filepath.Join(root, "nix/store"))
	if err != nil {
		return nil, fmt.Errorf("reading store: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var adds []mutate.Addendum
	for _, n := range names {
		sp := "/nix/store/" + n
		layer, err := tarLayer(func(tw *tar.Writer) error {
			return addTree(tw, filepath.Join(root, "nix/store", n), sp)
		})
		if err != nil {
			return nil, fmt.Errorf("layer for %s: %w", sp, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:   layer,
			History: v1.History{CreatedBy: "nix", Comment: "store paths: ['" + sp + "']", Created: v1.Time{Time: time.Unix(1, 0)}},
		})
	}
	top, err := tarLayer(func(tw *tar.Writer) error { return addTop(tw, root) })
	if err != nil {
		return nil, fmt.Errorf("top layer: %w", err)
	}
	adds = append(adds, mutate.Addendum{Layer: top, History: v1.History{CreatedBy: "nix", Comment: ""}})

	img := mutate.MediaType(empty.Image, types.DockerManifestSchema2)
	img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = opts.OS, opts.Arch
	cf.Created = v1.Time{Time: opts.Created}
	cf.Config.Env = []string{
		"PATH=/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/usr/bin:/bin",
		"NIX_PATH=nixpkgs=channel:nixpkgs-unstable",
	}
	cf.Config.Cmd = []string{"/root/.nix-profile/bin/bash"}
	if opts.NixVersion != "" {
		cf.Config.Labels = map[string]string{"org.opencontainers.image.version": opts.NixVersion}
	}
	return mutate.ConfigFile(img, cf)
}

// Index puts images into a Docker manifest list, each under its config's platform.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	var adds []mutate.IndexAddendum
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.DockerManifestSchema2, Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture}},
		})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

func tarLayer(fill func(*tar.Writer) error) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := fill(tw); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.DockerLayer))
}

// addTree writes the tree at src into tw under the entry name name.
func addTree(tw *tar.Writer, src, name string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := name
		if rel != "." {
			entry = name + "/" + filepath.ToSlash(rel)
		}
		return addEntry(tw, p, entry)
	})
}

func addEntry(tw *tar.Writer, p, entry string) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = entry
	if info.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = time.Unix(1, 0), time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if info.Mode().IsRegular() {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
	}
	return nil
}

func addTop(tw *tar.Writer, root string) error {
	for _, dir := range []string{"nix/var/nix/db", "nix/var/nix/profiles", "nix/var/nix/gcroots"} {
		if _, err := os.Lstat(filepath.Join(root, dir)); err != nil {
			continue
		}
		if err := addTree(tw, filepath.Join(root, dir), dir); err != nil {
			return err
		}
	}
	files := []struct{ name, data string }{
		{"etc/passwd", "root:x:0:0:System administrator:/root:/bin/bash\nnixbld1:x:30001:30000::/var/empty:/run/current-system/sw/bin/nologin\n"},
		{"etc/group", "root:x:0:\nnixbld:x:30000:nixbld1\n"},
		{"etc/nix/nix.conf", "sandbox = false\nbuild-users-group = nixbld\ntrusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=\n"},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, f.data); err != nil {
			return err
		}
	}
	return tw.WriteHeader(&tar.Header{Name: "root/.nix-profile", Typeflag: tar.TypeSymlink, Linkname: "/nix/var/nix/profiles/default", Mode: 0o777, ModTime: time.Unix(1, 0), Format: tar.FormatPAX})
}
