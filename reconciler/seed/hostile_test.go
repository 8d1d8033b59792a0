package seed_test

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// fixture is a valid image whose store path "hand" is left out, so that
// each case can supply it as a hand-made layer, hostile or not.
type fixture struct {
	base  v1.Image
	hand  []entry // the hand path's tree, named /nix/store/<hand>/…
	path  string  // /nix/store/<hand>
	other string  // another store path of the image
	paths []string
	// roomy is base with a db that leaves room for the entries a hostile
	// layer adds: the hand path's narSize is larger than its tree's, and
	// the evil path has a row. It shows the entry checks refuse what the
	// db checks would let through.
	roomy v1.Image
}

// evil is a store path that hostile layers create; only roomy declares it.
var evil = "/nix/store/" + strings.Repeat("a", 32) + "-evil"

func newFixture(t *testing.T) fixture {
	const tool = "#!/bin/sh\necho tool\n"
	spec := synth.Release(synth.ReleaseOptions{Version: "h", Paths: 4, FilesPerPath: 2})
	spec.Paths = append(spec.Paths, synth.Path{
		Name: "hand-1.0",
		Refs: []string{"pkg000-h"},
		Files: []synth.File{
			{Name: "bin/tool", Exec: true, Data: tool},
			{Name: "bin/tool-copy", Exec: true, Data: tool},
			{Name: "share/doc/hand/README", Data: "read me\n"},
			{Name: "lib/abs", Link: "/etc/passwd"},
			{Name: "lib/dep", Link: "@pkg000-h@/bin"},
		},
	})
	root := t.TempDir()
	nixtest.Build(t, root, spec)
	f := fixture{path: synth.StorePath("h", "hand-1.0"), other: synth.StorePath("h", "pkg000-h"), paths: nixtest.Paths(t, root)}
	aside := filepath.Join(t.TempDir(), "hand")
	if err := os.Rename(filepath.Join(root, f.path), aside); err != nil {
		t.Fatal(err)
	}
	f.hand = treeEntries(t, aside, f.path)
	var err error
	if f.base, err = synth.Image(root, synth.ImageOptions{}); err != nil {
		t.Fatal(err)
	}
	nixtest.ExecSQL(t, root, `update ValidPaths set narSize = narSize + 65536 where path = ?`, f.path)
	nixtest.ExecSQL(t, root, `insert into ValidPaths (path, hash, registrationTime, narSize) values (?, 'sha256:`+strings.Repeat("0", 64)+`', 1, 65536)`, evil)
	if f.roomy, err = synth.Image(root, synth.ImageOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// h returns a copy of the hand path's entries.
func (f fixture) h() []entry { return slices.Clone(f.hand) }

// name returns the entry name of rel in the hand path (absolute, as store
// layers name their entries).
func (f fixture) name(rel string) string { return f.path + "/" + rel }

// layers are the entries of a hostile image's layers, one list each.
type layers = [][]entry

// swap is the hand path with its entry ending in suffix replaced by e.
func (f fixture) swap(t *testing.T, suffix string, e entry) func(string) layers {
	return func(string) layers {
		es := f.h()
		es[find(t, es, suffix)] = e
		return layers{es}
	}
}

// chmod is the hand path with its entry ending in suffix given mode.
func (f fixture) chmod(t *testing.T, suffix string, mode int64) func(string) layers {
	return func(string) layers {
		es := f.h()
		es[find(t, es, suffix)].hdr.Mode = mode
		return layers{es}
	}
}

func TestHostileEntries(t *testing.T) {
	f := newFixture(t)
	host := nixtest.Registry(t)

	for i, tc := range []struct {
		name   string
		layers func(outside string) layers
		// wantErr is empty when the entry is dropped or normalised.
		wantErr string
		check   func(t *testing.T, dir string)
	}{
		{
			name:    "dotdot in a store path",
			layers:  func(string) layers { return layers{append(f.h(), reg(f.name("../../../../pwned"), "x", 0o644))} },
			wantErr: `".." component`,
		},
		{
			name:    "leading dotdot",
			layers:  func(string) layers { return layers{append(f.h(), reg("../pwned", "x", 0o644))} },
			wantErr: `".." component`,
		},
		{
			name: "symlinked store path, entry below",
			layers: func(out string) layers {
				return layers{append(f.h(), symlink(evil, out), reg(evil+"/pwned", "x", 0o644))}
			},
			wantErr: "lies below a symlink",
		},
		{
			name: "store path symlinked into the db, entry below",
			layers: func(string) layers {
				return layers{append(f.h(), symlink(evil, "../var/nix/db"), reg(evil+"/db.sqlite", "x", 0o644))}
			},
			wantErr: "lies below a symlink",
		},
		{
			name: "symlinked dir inside a store path",
			layers: func(out string) layers {
				return layers{append(f.h(), symlink(f.name("share/evil"), out), reg(f.name("share/evil/pwned"), "x", 0o644))}
			},
			wantErr: "lies below a symlink",
		},
		{
			name: "dir turned into a symlink after its children",
			layers: func(out string) layers {
				return layers{append(f.h(), symlink(f.name("share/doc"), out))}
			},
			wantErr: "already holds a directory",
		},
		{
			name: "entry below a file",
			layers: func(string) layers {
				return layers{append(f.h(), reg(f.name("bin/tool/pwned"), "x", 0o644))}
			},
			wantErr: "lies below a file",
		},
		{
			name:    "symlinked nix/store",
			layers:  func(out string) layers { return layers{append([]entry{symlink("nix/store", out)}, f.h()...)} },
			wantErr: "nix/store must be a directory",
		},
		{
			name: "symlinked nix/var/nix/db",
			layers: func(out string) layers {
				return layers{f.h(), {symlink("nix/var/nix/db", out), reg("nix/var/nix/db/x", "x", 0o644)}}
			},
			wantErr: "nix/var/nix/db must be a directory",
		},
		{
			name:    "symlinked /nix",
			layers:  func(string) layers { return layers{append([]entry{symlink("/nix", "/")}, f.h()...)} },
			wantErr: "nix must be a directory",
		},
		{
			name:    "hardlink into another store path",
			layers:  f.swap(t, "bin/tool-copy", hardlink(f.name("bin/tool-copy"), f.other+"/bin/pkg000")),
			wantErr: "leaves its store path",
		},
		{
			name: "hardlink outside the store",
			layers: func(out string) layers {
				es := f.h()
				es[find(t, es, "bin/tool-copy")] = hardlink(f.name("bin/tool-copy"), out+"/canary")
				return layers{es}
			},
			wantErr: "leaves its store path",
		},
		{
			name:    "hardlink climbing out",
			layers:  f.swap(t, "bin/tool-copy", hardlink(f.name("bin/tool-copy"), f.name("../../../etc/passwd"))),
			wantErr: `".." component`,
		},
		{
			name:    "hardlink to a missing entry",
			layers:  f.swap(t, "bin/tool-copy", hardlink(f.name("bin/tool-copy"), f.name("bin/nothing"))),
			wantErr: "not a file of its store path",
		},
		{
			name:    "character device",
			layers:  func(string) layers { return layers{append(f.h(), special(f.name("null"), tar.TypeChar))} },
			wantErr: "character device",
		},
		{
			name:    "block device",
			layers:  func(string) layers { return layers{append(f.h(), special(f.name("sda"), tar.TypeBlock))} },
			wantErr: "block device",
		},
		{
			name:    "fifo",
			layers:  func(string) layers { return layers{append(f.h(), special(f.name("pipe"), tar.TypeFifo))} },
			wantErr: "fifo",
		},
		{
			name:    "setuid file",
			layers:  f.chmod(t, "bin/tool", 0o4755),
			wantErr: "setuid",
		},
		{
			name:    "setgid dir",
			layers:  f.chmod(t, "/share", 0o2755),
			wantErr: "setgid",
		},
		{
			name:    "whiteout of a store path",
			layers:  func(string) layers { return layers{f.h(), {reg("nix/store/.wh."+filepath.Base(f.other), "", 0o644)}} },
			wantErr: "whiteout",
		},
		{
			name:    "store path in two layers",
			layers:  func(string) layers { return layers{f.h(), {reg(f.name("bin/extra"), "x", 0o644)}} },
			wantErr: "is in two layers",
		},
		{
			name:    "same file twice",
			layers:  func(string) layers { return layers{append(f.h(), reg(f.name("bin/tool"), "evil", 0o755))} },
			wantErr: "already holds a file",
		},
		{
			name: "symlink in the db",
			layers: func(out string) layers {
				return layers{f.h(), {symlink("nix/var/nix/db/db.sqlite-wal", out+"/canary")}}
			},
			wantErr: "regular files only",
		},
		{
			name:    "not a store path name",
			layers:  func(string) layers { return layers{append(f.h(), reg("/nix/store/pwned", "x", 0o644))} },
			wantErr: "too short to be a valid store path",
		},
		{
			name: "store path name longer than Nix allows",
			layers: func(string) layers {
				return layers{append(f.h(), reg("/nix/store/"+strings.Repeat("0", 32)+"-"+strings.Repeat("a", 212)+"/x", "x", 0o644))}
			},
			wantErr: "longer than 211 characters",
		},
		{
			name: "store path name Nix refuses",
			layers: func(string) layers {
				return layers{append(f.h(), reg("/nix/store/"+strings.Repeat("0", 32)+"-..-x/y", "x", 0o644))}
			},
			wantErr: "first dash-separated component",
		},
		// Dropped or normalised: the seed succeeds without them.
		{
			name:   "absolute name outside /nix",
			layers: func(out string) layers { return layers{append(f.h(), reg(out+"/pwned", "x", 0o644))} },
		},
		{
			name:   "etc in a store layer",
			layers: func(string) layers { return layers{append(f.h(), reg("etc/passwd", "root::0:0::/:/bin/sh\n", 0o644))} },
			check: func(t *testing.T, dir string) {
				if _, err := os.Lstat(filepath.Join(dir, "etc")); err == nil {
					t.Error("etc/ reached the store dir")
				}
			},
		},
		{
			name:   "store internals (.links)",
			layers: func(string) layers { return layers{append(f.h(), reg("nix/store/.links/abc", "x", 0o644))} },
			check: func(t *testing.T, dir string) {
				if _, err := os.Lstat(filepath.Join(dir, "nix/store/.links")); err == nil {
					t.Error(".links reached the store")
				}
			},
		},
		{
			name: "foreign owners",
			layers: func(string) layers {
				es := f.h()
				for i := range es {
					es[i].hdr.Uid, es[i].hdr.Gid = 1000, 1000
				}
				return layers{es}
			},
			check: func(t *testing.T, dir string) {
				fi, err := os.Stat(filepath.Join(dir, f.path, "bin/tool"))
				if err != nil {
					t.Fatal(err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
					t.Errorf("owner %d:%d, want root", st.Uid, st.Gid)
				}
			},
		},
		{
			name:   "sticky dir",
			layers: f.chmod(t, "/share", 0o1755),
			check: func(t *testing.T, dir string) {
				fi, err := os.Stat(filepath.Join(dir, f.path, "share"))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != os.ModeDir|0o555 {
					t.Errorf("share is %v, want dr-xr-xr-x", fi.Mode())
				}
			},
		},
		{
			name: "children before parents, hardlink before its target",
			layers: func(string) layers {
				es := f.h()
				es[find(t, es, "bin/tool-copy")] = hardlink(f.name("bin/tool-copy"), f.name("bin/tool"))
				slices.Reverse(es)
				return layers{es}
			},
			check: func(t *testing.T, dir string) {
				a, _ := os.Stat(filepath.Join(dir, f.path, "bin/tool"))
				b, _ := os.Stat(filepath.Join(dir, f.path, "bin/tool-copy"))
				if a == nil || b == nil || !os.SameFile(a, b) {
					t.Error("bin/tool-copy is not a hardlink of bin/tool")
				}
			},
		},
		{
			name:   "absolute symlink outside the store",
			layers: func(string) layers { return layers{f.h()} },
			check: func(t *testing.T, dir string) {
				if target, err := os.Readlink(filepath.Join(dir, f.path, "lib/abs")); err != nil || target != "/etc/passwd" {
					t.Errorf("lib/abs → %q, %v; want /etc/passwd as it was", target, err)
				}
			},
		},
	} {
		ref := fmt.Sprintf("%s/hostile/case%d:1", host, i)
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "canary"), []byte("canary\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			img := f.base
			if tc.wantErr != "" {
				img = f.roomy
			}
			nixtest.PushImage(t, ref, appendLayers(t, img, tc.layers(outside)...))
			dir := filepath.Join(base, "store")

			if tc.wantErr != "" {
				// An existing store that a failing --replace must leave alone.
				nixtest.Build(t, dir, synth.Release(synth.ReleaseOptions{Version: "old", Paths: 4, FilesPerPath: 1}))
				before := nixtest.Snapshot(t, base)
				_, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir, Replace: true})
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				nixtest.SameTree(t, "the store dir and its surroundings", before, nixtest.Snapshot(t, base))
				return
			}
			before := nixtest.Snapshot(t, outside)
			if _, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir}); err != nil {
				t.Fatal(err)
			}
			nixtest.SameTree(t, "outside", before, nixtest.Snapshot(t, outside))
			entries, _ := os.ReadDir(base)
			if len(entries) != 2 {
				t.Errorf("%s holds %v, want outside and store only", base, entries)
			}
			if tc.check != nil {
				tc.check(t, dir)
			}
			if diff := cmp.Diff(f.paths, nixtest.Verify(t, dir)); diff != "" {
				t.Errorf("seeded paths (-want +got):\n%s", diff)
			}
		})
	}
}
