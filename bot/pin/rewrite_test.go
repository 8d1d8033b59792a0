package pin

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the expected.yml golden files")

const (
	newDigest = "sha256:11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"
	oldDigest = "sha256:cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4"
)

// TestRewriteGolden pins every testdata/<case>/input.yml and compares the
// result with expected.yml. A case's optional files "image", "tag" and
// "version-tag" set Options.Image (default nixos/nix), Options.Tag and
// Options.VersionTag; its optional "unpinnable" lists what Unpinnable
// reports, one "LINE RAW" per line.
func TestRewriteGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/input.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 20 {
		t.Fatalf("found %d golden cases, want at least 20", len(dirs))
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			src := readFile(t, in)
			opts := Options{Image: "nixos/nix", Digest: newDigest}
			if b, err := os.ReadFile(filepath.Join(dir, "image")); err == nil {
				opts.Image = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(dir, "tag")); err == nil {
				opts.Tag = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(dir, "version-tag")); err == nil {
				opts.VersionTag = strings.TrimSpace(string(b))
			}
			out, changes, err := Rewrite(src, opts)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			golden := filepath.Join(dir, "expected.yml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readFile(t, golden)
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("Rewrite output mismatch (-want +got):\n%s", diff)
			}
			if (len(changes) == 0) != bytes.Equal(src, out) {
				t.Errorf("Rewrite reported %d changes, but output equal to input is %v", len(changes), bytes.Equal(src, out))
			}
			checkPinned(t, out, opts)
			checkUnpinnable(t, dir, src, opts.Image)
			again, more, err := Rewrite(out, opts)
			if err != nil || len(more) != 0 || !bytes.Equal(again, out) {
				t.Errorf("Rewrite of its own output: %d changes %v, err %v; want none", len(more), more, err)
			}
		})
	}
}

// checkPinned fails unless every reference in src carries opts' digest.
func checkPinned(t *testing.T, src []byte, opts Options) {
	t.Helper()
	refs, err := References(src, opts.Image)
	if err != nil {
		t.Fatalf("References: %v", err)
	}
	for _, r := range refs {
		if r.Digest != opts.Digest {
			t.Errorf("line %d: %q is not pinned", r.Line, r.Raw)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkUnpinnable compares Unpinnable's answer with the case's
// "unpinnable" file (none: nothing is reported).
func checkUnpinnable(t *testing.T, dir string, src []byte, image string) {
	t.Helper()
	skipped, err := Unpinnable(src, image)
	if err != nil {
		t.Fatalf("Unpinnable: %v", err)
	}
	var got strings.Builder
	for _, s := range skipped {
		fmt.Fprintf(&got, "%d %s\n", s.Line, s.Raw)
	}
	golden := filepath.Join(dir, "unpinnable")
	if *update && got.Len() > 0 {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("Unpinnable mismatch (-want +got):\n%s", diff)
	}
}
