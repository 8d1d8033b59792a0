package image

import (
	"archive/tar"
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// TestNarStream checks the NAR hash computed while extracting against the
// hash of the extracted tree read back, and that it is computed from the
// stream exactly when the entries come in NAR order.
func TestNarStream(t *testing.T) {
	const sp = "nix/store/0123456789abcdfghijklmnpqrsvwxyz-p/"
	dir := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}
	}
	file := func(name, data string, mode int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), Linkname: data}
	}
	link := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
	}
	hard := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}
	}
	tests := []struct {
		name     string
		entries  []*tar.Header
		streamed bool
	}{
		{"single file", []*tar.Header{file(sp[:len(sp)-1], "hello\n", 0o644)}, true},
		{"single executable of 8 bytes", []*tar.Header{file(sp[:len(sp)-1], "12345678", 0o755)}, true},
		{"single symlink", []*tar.Header{link(sp[:len(sp)-1], "/nix/store/x")}, true},
		{"empty dir", []*tar.Header{dir(sp)}, true},
		{"sorted tree", []*tar.Header{
			dir(sp), dir(sp + "bin"), file(sp+"bin/a", "#!/bin/sh\n", 0o755), link(sp+"bin/b", "a"),
			dir(sp + "bin/sub"), dir(sp + "bin/sub/deeper"), file(sp+"bin/sub/deeper/x", "", 0o644),
			dir(sp + "bin2"), file(sp+"bin2/z", "z", 0o644), dir(sp + "empty"),
			dir(sp + "lib"), file(sp+"lib/l.so", string(bytes.Repeat([]byte("so"), 40000)), 0o555),
			file(sp+"z", "last", 0o644),
		}, true},
		{"repeated dir header", []*tar.Header{dir(sp), dir(sp + "a"), file(sp+"a/f", "f", 0o644), dir(sp + "a")}, true},
		{"unsorted names", []*tar.Header{dir(sp), file(sp+"b", "b", 0o644), file(sp+"a", "a", 0o644)}, false},
		{"dir reopened", []*tar.Header{dir(sp), dir(sp + "a"), file(sp+"b", "b", 0o644), file(sp+"a/f", "f", 0o644)}, false},
		{"implicit dirs", []*tar.Header{file(sp+"bin/a", "a", 0o644)}, false},
		{"root after contents", []*tar.Header{file(sp+"a", "a", 0o644), dir(sp)}, false},
		{"hardlink", []*tar.Header{dir(sp), file(sp+"a", "a", 0o644), hard(sp+"b", sp+"a")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tt.entries {
				data := ""
				if h.Typeflag == tar.TypeReg {
					data, h.Linkname = h.Linkname, ""
				}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				tw.Write([]byte(data))
			}
			tw.Close()
			s, err := newStager(t.TempDir(), 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.close(); removeTree(s.dir) })
			s.rows = map[string]store.PathInfo{"/" + sp[:len(sp)-1]: {NarSize: 1 << 30}}
			lx, err := s.extract(context.Background(), 0, &buf, storePhase)
			if err != nil {
				t.Fatal(err)
			}
			names := lx.order
			if len(names) != 1 {
				t.Fatalf("extracted store paths %q, want one", names)
			}
			want, size, err := synth.NarHash(filepath.Join(s.dir, "nix/store", names[0]))
			if err != nil {
				t.Fatal(err)
			}
			p := "/nix/store/" + names[0]
			if got := s.hashes[p]; got != want {
				t.Errorf("NAR hash %s, the tree on disk has %s", got, want)
			}
			// The size checked against narSize, and the one added up entry
			// by entry that stops an oversized path, are the tree's.
			if s.sizes[p] != size || s.summed[p] != size {
				t.Errorf("NAR size %d, added up %d; the tree on disk has %d", s.sizes[p], s.summed[p], size)
			}
			if streamed := s.reread.Load() == 0; streamed != tt.streamed {
				t.Errorf("hashed while extracting: %v, want %v", streamed, tt.streamed)
			}
		})
	}
}
