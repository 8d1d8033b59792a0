package image_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// nixImage builds a store with real Nix from spec and lays it out as a
// nixos/nix image for arch. It returns the image and its store paths.
func nixImage(t *testing.T, spec synth.Spec, arch string) (v1.Image, []string) {
	t.Helper()
	b := nixtest.NixImage(t, spec, synth.ImageOptions{Arch: arch, NixVersion: spec.Seed})
	return b.Image, b.Paths
}

func stage(t *testing.T, ref string, opts image.Options) (*image.Staged, error) {
	t.Helper()
	if opts.StageIn == "" {
		opts.StageIn = t.TempDir()
	}
	st, err := image.Stage(context.Background(), ref, opts)
	if st != nil {
		t.Cleanup(func() { st.Close() })
	}
	return st, err
}

func TestStageVerifiesWithNix(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "2.24.9", Paths: 6, FilesPerPath: 5, FileSize: 3000})
	// Store paths that are a single file or a single symlink, and one with
	// more directories than the extractor keeps handles open for.
	wide := synth.Path{Name: "wide-1.0"}
	for i := 0; i < 300; i++ {
		wide.Files = append(wide.Files, synth.File{Name: fmt.Sprintf("d%03d/sub/f", i), Data: fmt.Sprint(i)})
	}
	wide.Files = append(wide.Files, synth.File{Name: strings.Repeat("deep/", 40) + "f", Exec: true, Data: "deep"})
	spec.Paths = append(spec.Paths,
		synth.Path{Name: "hello.txt", Files: []synth.File{{Data: "hello\n"}}},
		synth.Path{Name: "hello-link", Files: []synth.File{{Link: "@hello.txt@"}}},
		wide)
	img, want := nixImage(t, spec, "amd64")
	host := nixtest.Registry(t)
	digest := nixtest.PushImage(t, host+"/nixos/nix:2.24.9", img)

	var progress bytes.Buffer
	st, err := stage(t, host+"/nixos/nix:2.24.9", image.Options{Platform: "linux/amd64", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("layers %d/%d, ", len(spec.Paths)+1, len(spec.Paths)+1); !strings.Contains(progress.String(), want) {
		t.Errorf("progress %q lacks %q", progress.String(), want)
	}
	if st.Digest != digest || st.Manifest != digest {
		t.Errorf("digests %s, %s; want %s", st.Digest, st.Manifest, digest)
	}
	if diff := cmp.Diff(want, st.Paths); diff != "" {
		t.Errorf("staged paths (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "nix" {
		t.Errorf("staging dir holds %v, want only nix", entries)
	}
	if _, err := os.Lstat(filepath.Join(st.Dir, "etc")); err == nil {
		t.Error("etc/ was extracted")
	}
	got := nixtest.Verify(t, st.Dir)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nix path-info --all (-want +got):\n%s", diff)
	}
}

// TestStageCanonicalMetadata checks every staged entry: files 0444/0555,
// dirs 0555, mtime 1, owner root; symlinks kept as they are.
func TestStageCanonicalMetadata(t *testing.T) {
	spec := synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 3})
	img, _ := nixImage(t, spec, "amd64")
	host := nixtest.Registry(t)
	nixtest.PushImage(t, host+"/nixos/nix:1", img)
	st, err := stage(t, host+"/nixos/nix:1", image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	links := 0
	nixtest.Walk(t, filepath.Join(st.Dir, "nix/store"), func(p, rel string, fi fs.FileInfo) error {
		if rel == "." {
			return nil
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("%s: owner %d:%d", p, sys.Uid, sys.Gid)
		}
		if fi.ModTime().Unix() != 1 {
			t.Errorf("%s: mtime %v", p, fi.ModTime())
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			links++
			target, _ := os.Readlink(p)
			if filepath.Base(p) == "dep" && !strings.HasPrefix(target, "/nix/store/") {
				t.Errorf("%s → %s, want the absolute store path", p, target)
			}
		case fi.IsDir():
			if fi.Mode().Perm() != 0o555 {
				t.Errorf("%s: dir mode %v", p, fi.Mode())
			}
		default:
			if m := fi.Mode().Perm(); m != 0o444 && m != 0o555 {
				t.Errorf("%s: file mode %v", p, fi.Mode())
			}
			if strings.Contains(p, "/bin/") && fi.Mode().Perm() != 0o555 {
				t.Errorf("%s: executable lost its x bit: %v", p, fi.Mode())
			}
		}
		return nil
	})
	if links == 0 {
		t.Error("no symlinks staged")
	}
}

// TestStagePicksPlatform stages both halves of a multi-arch index holding
// two different stores.
func TestStagePicksPlatform(t *testing.T) {
	amd, amdPaths := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "amd", Paths: 4, FilesPerPath: 2}), "amd64")
	arm, armPaths := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "arm", Paths: 5, FilesPerPath: 2}), "arm64")
	idx, err := synth.Index(amd, arm)
	if err != nil {
		t.Fatal(err)
	}
	host := nixtest.Registry(t)
	digest := nixtest.PushIndex(t, host+"/nixos/nix:multi", idx)
	for _, tc := range []struct {
		platform string
		img      v1.Image
		paths    []string
	}{
		{"linux/amd64", amd, amdPaths},
		{"linux/arm64", arm, armPaths},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			st, err := stage(t, host+"/nixos/nix:multi", image.Options{Platform: tc.platform})
			if err != nil {
				t.Fatal(err)
			}
			md, _ := tc.img.Digest()
			if st.Digest != digest || st.Manifest != md.String() {
				t.Errorf("digests %s, %s; want index %s, manifest %s", st.Digest, st.Manifest, digest, md)
			}
			if diff := cmp.Diff(tc.paths, st.Paths); diff != "" {
				t.Errorf("staged paths (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.paths, nixtest.Verify(t, st.Dir)); diff != "" {
				t.Errorf("nix path-info --all (-want +got):\n%s", diff)
			}
		})
	}
	in := t.TempDir()
	_, err = stage(t, host+"/nixos/nix:multi", image.Options{Platform: "linux/s390x", StageIn: in})
	if want := "no linux/s390x image in the index (it has linux/amd64, linux/arm64)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
	assertEmpty(t, in)
	// By digest too.
	st, err := stage(t, host+"/nixos/nix@"+digest, image.Options{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(armPaths, st.Paths); diff != "" {
		t.Errorf("staged by digest (-want +got):\n%s", diff)
	}
}

// TestStageSkip leaves out layers that Skip names; their db rows are fine.
func TestStageSkip(t *testing.T) {
	img, paths := nixImage(t, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 5, FilesPerPath: 2}), "amd64")
	host := nixtest.Registry(t)
	nixtest.PushImage(t, host+"/nixos/nix:1", img)
	skip := paths[0]
	var asked int
	st, err := stage(t, host+"/nixos/nix:1", image.Options{Skip: func(_ v1.Hash, sp []string) bool {
		asked++
		return len(sp) == 1 && sp[0] == skip
	}})
	if err != nil {
		t.Fatal(err)
	}
	if asked != len(paths) {
		t.Errorf("Skip asked %d times, want once per store layer (%d)", asked, len(paths))
	}
	if diff := cmp.Diff(paths[1:], st.Paths); diff != "" {
		t.Errorf("staged paths (-want +got):\n%s", diff)
	}
	if _, err := os.Lstat(filepath.Join(st.Dir, skip)); err == nil {
		t.Errorf("skipped %s was staged", skip)
	}
	if len(st.Layers) != len(paths)+1 {
		t.Errorf("%d layers listed, want all %d", len(st.Layers), len(paths)+1)
	}
}

// TestStageHashMismatch: a store path whose files differ from what the
// image db registers fails the stage, naming the path, and leaves nothing.
func TestStageHashMismatch(t *testing.T) {
	root := t.TempDir()
	infos := nixtest.Build(t, root, synth.Release(synth.ReleaseOptions{Version: "1", Paths: 4, FilesPerPath: 2}))
	bad := infos[1].Path
	f := filepath.Join(root, bad, "bin")
	if _, err := nixtest.Run(nil, "chmod", "-R", "u+w", f); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(f)
	if err := os.WriteFile(filepath.Join(f, entries[0].Name()), []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := synth.Image(root, synth.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host := nixtest.Registry(t)
	nixtest.PushImage(t, host+"/nixos/nix:bad", img)
	in := t.TempDir()
	_, err = stage(t, host+"/nixos/nix:bad", image.Options{StageIn: in})
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("err = %v, want a NAR hash mismatch naming %s", err, bad)
	}
	assertEmpty(t, in)
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("%s holds %v after a failed stage, want nothing", dir, entries)
	}
}
