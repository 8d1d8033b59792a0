package seed_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

// rowWorld is an image store built by real Nix whose paths sit at the
// edges of Nix's rules: a name of exactly 211 characters, one of every
// special character Nix allows, one starting with a dot, and a derivation.
type rowWorld struct {
	root                          string
	pkg, long, chars, dotted, drv string
	paths                         []string
}

const rowSeed = "rows"

func newRowWorld(t *testing.T) rowWorld {
	t.Helper()
	long := strings.Repeat("l", 211)
	spec := synth.Spec{Seed: rowSeed, Paths: []synth.Path{
		{Name: "dep-1.0", Files: []synth.File{{Name: "lib/libdep", Data: "dep\n"}}},
		{Name: "pkg-1.0", Refs: []string{"dep-1.0"}, Files: []synth.File{
			{Name: "bin/pkg", Exec: true, Data: "#!/bin/sh\n"}, {Name: "lib/dep", Link: "@dep-1.0@/lib"}}},
		{Name: long, Files: []synth.File{{Name: "", Data: "long\n"}}},
		{Name: "a+b-c.d_e?f=g", Files: []synth.File{{Name: "", Data: "chars\n"}}},
		{Name: ".dotted", Files: []synth.File{{Name: "", Data: "dotted\n"}}},
	}}
	root := t.TempDir()
	nixtest.Build(t, root, spec)
	// nix-store --load-db would parse the derivation and insist on its
	// output paths: its row is written as an image db may hold it.
	drv := synth.Spec{Seed: rowSeed, Paths: []synth.Path{{Name: "pkg-1.0.drv", Files: []synth.File{{Name: "", Data: "Derive([])"}}}}}
	infos, err := synth.WriteTrees(root, drv)
	if err != nil {
		t.Fatal(err)
	}
	hash, size, err := synth.NarHash(filepath.Join(root, infos[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	nixtest.ExecSQL(t, root, `insert into ValidPaths (path, hash, registrationTime, narSize) values (?, ?, 1, ?)`, infos[0].Path, hash, size)
	sp := func(n string) string { return synth.StorePath(rowSeed, n) }
	return rowWorld{root: root, pkg: sp("pkg-1.0"), long: sp(long), chars: sp("a+b-c.d_e?f=g"), dotted: sp(".dotted"),
		drv: sp("pkg-1.0.drv"), paths: nixtest.Paths(t, root)}
}

// rename gives a row another path (the layers keep the old name: the db
// is checked before any layer is extracted).
func rename(path, to string) string {
	return fmt.Sprintf(`update ValidPaths set path = '%s' where path = '%s'`, to, path)
}

// hashPart replaces the first characters of p's hash part.
func hashPart(p, prefix string) string {
	return "/nix/store/" + prefix + p[len("/nix/store/")+len(prefix):]
}

type rowRefusal struct {
	refusal, sql, want string
	nix                bool
}

// rowRefusals are the image db rows just outside one of Nix's rules: each
// is refused with one line naming the row and the column. refusal is the
// row of README's security table that lists it.
//
// nix says whether Nix 2.8 itself fails (`nix path-info --all` or
// `nix-store --verify --check-contents`) on a store holding the row; the
// others are refused by newer Nix (a name starting with "." or "..",
// the dash after the hash part), would be misread by it (outputs, sizes,
// signatures), or cannot be verified.
func rowRefusals(w rowWorld) []rowRefusal {
	return []rowRefusal{
		{"a path outside /nix/store", rename(w.pkg, "/nix/evil/"+filepath.Base(w.pkg)), "column path: path \"/nix/evil/", true},
		{"a path below a store path", rename(w.pkg, w.pkg+"/sub"), "column path: store path", true},
		{"a hash part that is not nixbase32", rename(w.pkg, hashPart(w.pkg, "e")), "illegal base-32 character 'e'", true},
		{"a hash part of 31 characters", rename(w.pkg, "/nix/store/"+filepath.Base(w.pkg)[1:]), "illegal base-32 character '-'", true},
		{"no dash after the hash part", rename(w.pkg, w.pkg[:43]+"_"+w.pkg[44:]), "no dash after its hash part", false},
		{"a name longer than 211 characters", rename(w.long, w.long+"l"), "longer than 211 characters (212)", true},
		{"a name with a character Nix does not allow", rename(w.chars, w.chars+"@"), "illegal character '@'", true},
		{"a name whose first component is . or ..", rename(w.dotted, hashPart(w.dotted, "")[:44]+"..-x"), `first dash-separated component is ".."`, false},
		{"an empty name", rename(w.chars, w.chars[:44]), "the name is empty", true},
		{"a deriver outside the store", fmt.Sprintf(`update ValidPaths set deriver = '/tmp/evil.drv' where path = '%s'`, w.pkg), "column deriver: path \"/tmp/evil.drv\" is not in the Nix store", true},
		{"a reference to a row whose path is outside the store", fmt.Sprintf(`insert into ValidPaths (path, hash, registrationTime, narSize) values ('/etc/passwd', 'sha256:%s', 1, 8);
			insert into Refs (referrer, reference) values ((select id from ValidPaths where path = '%s'), (select id from ValidPaths where path = '/etc/passwd'))`, strings.Repeat("0", 64), w.pkg),
			`column path: path "/etc/passwd" is not in the Nix store`, true},
		{"a derivation output outside the store", fmt.Sprintf(`insert into DerivationOutputs (drv, id, path) values ((select id from ValidPaths where path = '%s'), 'out', '/tmp/out')`, w.drv), "DerivationOutputs row of " + w.drv + ": column path", false},
		{"a derivation output id that is not a name", fmt.Sprintf(`insert into DerivationOutputs (drv, id, path) values ((select id from ValidPaths where path = '%s'), 'o/ut', '%s')`, w.drv, w.pkg), "column id: the name contains the illegal character '/'", false},
		{"a hash that is not sha256", fmt.Sprintf(`update ValidPaths set hash = 'md5:%s' where path = '%s'`, strings.Repeat("0", 32), w.pkg), "column hash: \"md5:", true},
		{"a hash Nix cannot parse", fmt.Sprintf(`update ValidPaths set hash = 'sha256:xyz' where path = '%s'`, w.pkg), "column hash: \"sha256:xyz\" is not a Nix hash", true},
		{"a missing narSize", fmt.Sprintf(`update ValidPaths set narSize = null where path = '%s'`, w.pkg), "column narSize: missing or not positive", false},
		{"a narSize smaller than the tree's NAR", fmt.Sprintf(`update ValidPaths set narSize = narSize - 8 where path = '%s'`, w.pkg), "holds more than the", false},
		{"a narSize larger than the tree's NAR", fmt.Sprintf(`update ValidPaths set narSize = narSize + 8 where path = '%s'`, w.pkg), "the image db's narSize says", false},
		{"a content address Nix cannot parse", fmt.Sprintf(`update ValidPaths set ca = 'fixed:r:sha257:abc' where path = '%s'`, w.pkg), "column ca:", true},
		{"a signature Nix cannot parse", fmt.Sprintf(`update ValidPaths set sigs = 'cache.example.org-1' where path = '%s'`, w.pkg), "column sigs:", false},
		{"declared sizes beyond the free space", fmt.Sprintf(`update ValidPaths set narSize = %d where path = '%s'`, int64(1)<<60, w.pkg), "not enough free space in", false},
	}
}

// TestImageRowRules merges, into a live store holding an older release and
// a cached build, images whose db rows sit just inside each of Nix's rules
// (all accepted, and real Nix is happy with the merged store) and just
// outside (each refused with one line, the live store byte for byte as it
// was).
func TestImageRowRules(t *testing.T) {
	w := newRowWorld(t)
	host := nixtest.Registry(t)
	dir, oldPaths, _, _ := seedOld(t, host)
	cached := nixtest.Add(t, dir, t.TempDir())

	for i, rc := range rowRefusals(w) {
		t.Run("refused/"+rc.refusal, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command("cp", "-a", w.root, root).CombinedOutput(); err != nil {
				t.Fatalf("copying the image store: %v: %s", err, out)
			}
			nixtest.ExecSQL(t, root, rc.sql)
			img, err := synth.Image(root, synth.ImageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ref := fmt.Sprintf("%s/rows/out%d:1", host, i)
			nixtest.PushImage(t, ref, img)
			// Real Nix as the oracle, on a copy of the image store.
			_, e1 := nixtest.Run(nil, "nix", "path-info", "--store", root, "--all")
			_, e2 := nixtest.Run(nil, "nix-store", "--store", root, "--verify", "--check-contents")
			if fails := e1 != nil || e2 != nil; fails != rc.nix {
				t.Errorf("Nix fails on a store with this row: %v, want %v (path-info: %v; verify: %v)", fails, rc.nix, e1, e2)
			}
			before := nixtest.Snapshot(t, dir)
			_, err = seed.Seed(context.Background(), ref, seed.Options{Store: dir})
			if err == nil || !strings.Contains(err.Error(), rc.want) {
				t.Fatalf("seed: %v, want a refusal about %q", err, rc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("refusal is not one line: %q", err)
			}
			nixtest.SameTree(t, "the live store", before, nixtest.Snapshot(t, dir))
		})
	}

	t.Run("accepted", func(t *testing.T) {
		root := w.root
		narHash := func(p string) []byte {
			t.Helper()
			var h string
			out := nixtest.Nix(t, nil, "nix-store", "--store", root, "-q", "--hash", p)
			h = strings.TrimPrefix(strings.TrimSpace(out), "sha256:")
			b, err := nixbase32.DecodeString(h)
			if err != nil {
				b, err = hex.DecodeString(h)
			}
			if err != nil {
				t.Fatalf("hash of %s: %q: %v", p, out, err)
			}
			return b
		}
		sig := func(key string) string { return key + ":" + base64.StdEncoding.EncodeToString(make([]byte, 64)) }
		dep := synth.StorePath(rowSeed, "dep-1.0")
		// Just inside each rule: a deriver and outputs in the store, a
		// nixbase32 hash, a content address, two signatures; the names at
		// the edges are in the world already.
		nixtest.ExecSQL(t, root, fmt.Sprintf(`update ValidPaths set deriver = '%s', sigs = '%s %s', ca = 'fixed:r:sha256:%s' where path = '%s'`,
			w.drv, sig("cache.example.org-1"), sig("other-1"), nixbase32.EncodeToString(narHash(w.pkg)), w.pkg))
		nixtest.ExecSQL(t, root, fmt.Sprintf(`update ValidPaths set hash = 'sha256:%s' where path = '%s'`, nixbase32.EncodeToString(narHash(dep)), dep))
		nixtest.ExecSQL(t, root, fmt.Sprintf(`insert into DerivationOutputs (drv, id, path) values ((select id from ValidPaths where path = '%[1]s'), 'out', '%[2]s'),
			((select id from ValidPaths where path = '%[1]s'), 'dev-1.x_y', '%[3]s')`, w.drv, w.pkg, dep))
		img, err := synth.Image(root, synth.ImageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ref := host + "/rows/in:1"
		nixtest.PushImage(t, ref, img)
		if _, err := seed.Seed(context.Background(), ref, seed.Options{Store: dir}); err != nil {
			t.Fatal(err)
		}
		got := nixtest.Verify(t, dir)
		want := nixtest.Union(oldPaths, []string{cached}, w.paths)
		if !slices.Equal(got, want) {
			t.Errorf("valid paths after the merge:\n%q\nwant\n%q", got, want)
		}
		if refs := nixtest.References(t, dir, w.pkg); !slices.Equal(refs, []string{dep}) {
			t.Errorf("references of %s: %q, want %s", w.pkg, refs, dep)
		}
		if d := nixtest.Deriver(t, dir, w.pkg); d != w.drv {
			t.Errorf("deriver of %s: %q, want %s", w.pkg, d, w.drv)
		}
		for _, p := range []string{w.long, w.chars, w.dotted} {
			if d := nixtest.Deriver(t, dir, p); d != "unknown-deriver" {
				t.Errorf("deriver of %s: %q", p, d)
			}
		}
	})
}
