package pin

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fragments are pieces of a CI file. In each, %J is a job name, %R a
// reference (of the image or of another repository) that the generator
// chooses, and %N text that looks like the image but is no reference and
// must never change.
var fragments = []string{
	"%J:\n  image: %R\n",
	"%J:\n  image: \"%R\"\n",
	"%J:\n  image: '%R'   # %N and docker.io/%N\n",
	"%J:\n  image: {name: %R, entrypoint: [\"\"]}\n",
	"%J:\n  image:\n    name: \"%R\"\n    pull_policy: always\n",
	"%J:\n  services:\n    - %R\n    - name: '%R'\n      alias: x\n",
	"%J:\n  variables:\n    NIX_IMAGE: %R\n  image: $NIX_IMAGE\n",
	"%J: {image: %R, services: [%R, {name: \"%R\"}]}\n",
	"# %J: image: %N\n",
	"%J:\n  image: &a%J %R\n%Jb:\n  image: *a%J\n  services: [*a%J]\n",
	"%J:\n  script:\n    - echo %N\n    - docker pull %N\n    - %N\n",
	"%J:\n  image: |-\n    %R\n",
	"---\n",
	"%J:\n  image: !!str %R\n",
	"%J:\n  stage: %N\n  needs: [%N]\n  extends: %N\n",
	"%J:\n  variables: {A: '%R', B: \"x\"}\n\n\n",
	"%J:   \n  image: %R\t# tab\n",
	"# héllo ünïcode — %N\n%J:\n  image: \"%R\" # ✓ ok\n",
	"%J: {d: \"é—ü\", image: %R, e: 'ß'}\n",
	"\"%J\":\n  'image': %R\n",
	"%J:\n  image:\n\n    %R\n",
	"%J:\n  trigger: %N\n  include:\n    - project: %N\n      file: x.yml\n",
}

// notImage lists text that is never a reference of nixos/nix.
var notImage = []string{
	"nixos/nix-unstable", "ghcr.io/nixos/nix:2.24", "mynixos/nix", "alpine@" + oldDigest,
	"nixos/nixpkgs", "library/nix", "localhost:5000/nixos/nix", "nixos/nix/x:1",
}

var (
	prefixes = []string{"", "docker.io/", "index.docker.io/", "${CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX}/",
		"$CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX/", "${CI_DEPENDENCY_PROXY_SERVER}/group/sub/dependency_proxy/containers/"}
	tags    = []string{"", ":latest", ":2.24", ":$NIX_VERSION"}
	digests = []string{"", "@" + oldDigest, "@" + newDigest}
)

// recipe hands out the fuzzer's choices one byte at a time.
type recipe struct{ b []byte }

func (r *recipe) next(n int) int {
	if len(r.b) == 0 {
		return 0
	}
	c := int(r.b[0])
	r.b = r.b[1:]
	return c % n
}

// generate builds a CI file from a recipe, together with the file that
// pinning it must produce, worked out independently of the package.
func generate(rc *recipe, opts Options) (src, want []byte, refs int) {
	crlf, noFinal, bom := rc.next(2) == 1, rc.next(2) == 1, rc.next(8) == 0
	var in, out strings.Builder
	for job := 0; len(rc.b) > 0 && job < 40; job++ {
		frag := fragments[rc.next(len(fragments))]
		parts := strings.Split(strings.ReplaceAll(frag, "%J", fmt.Sprintf("job%d", job)), "%R")
		for i, p := range parts {
			p = strings.ReplaceAll(p, "%N", "nixos/nix:2.24")
			in.WriteString(p)
			out.WriteString(p)
			if i == len(parts)-1 {
				break
			}
			if rc.next(4) == 0 {
				other := notImage[rc.next(len(notImage))]
				in.WriteString(other)
				out.WriteString(other)
				continue
			}
			refs++
			name := prefixes[rc.next(len(prefixes))] + "nixos/nix"
			tag, digest := tags[rc.next(len(tags))], digests[rc.next(len(digests))]
			in.WriteString(name + tag + digest)
			if tag != "" && opts.Tag != "" && !strings.Contains(tag, "$") {
				tag = ":" + opts.Tag
			}
			out.WriteString(name + tag + "@" + opts.Digest)
		}
	}
	fix := func(s string) []byte {
		if crlf {
			s = strings.ReplaceAll(s, "\n", "\r\n")
		}
		if noFinal {
			s = strings.TrimRight(s, "\r\n")
		}
		if bom {
			s = "\ufeff" + s
		}
		return []byte(s)
	}
	return fix(in.String()), fix(out.String()), refs
}

func FuzzRewrite(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, []byte("image: nixos/nix\n"), false)
	f.Add([]byte{1, 1, 1, 7, 1, 1, 1, 1, 9, 2, 2, 2, 2, 17, 1, 0, 0, 0, 18, 3, 1, 2, 1}, []byte("a: {image: 'nixos/nix:1'}\r\nb: [nixos/nix]"), true)
	all := []byte{1, 0, 1}
	for i := range fragments {
		all = append(all, byte(i), byte(i), byte(i+1), byte(i+2), byte(i+3), byte(i+1), byte(i+2), byte(i+3))
	}
	f.Add(all, []byte{}, true)
	inputs, _ := filepath.Glob("testdata/*/input.yml")
	for i, name := range inputs {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte{byte(i), byte(i * 7), byte(i * 13)}, src, i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, choices, raw []byte, withTag bool) {
		opts := Options{Image: "nixos/nix", Digest: newDigest}
		if withTag {
			opts.Tag = "2.25"
		}
		src, want, refs := generate(&recipe{choices}, opts)
		out, changes, err := Rewrite(src, opts)
		if err != nil {
			t.Fatalf("Rewrite of generated file %q: %v", src, err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("Rewrite of %q\n got %q\nwant %q", src, out, want)
		}
		found, err := References(src, opts.Image)
		if err != nil || len(found) != refs {
			t.Fatalf("References of %q found %d (err %v), want %d", src, len(found), err, refs)
		}
		checkEdits(t, src, out, changes, opts)

		// Arbitrary YAML: Rewrite may refuse it, but what it returns must
		// hold the same invariants.
		out, changes, err = Rewrite(raw, opts)
		if err != nil {
			return
		}
		checkEdits(t, raw, out, changes, opts)
	})
}

// checkEdits checks that out is src with exactly the changes made, every
// other byte kept, and that rewriting out again changes nothing.
func checkEdits(t *testing.T, src, out []byte, changes []Change, opts Options) {
	t.Helper()
	in, o := src, out
	for _, c := range changes {
		r, ok := parseRef(c.New)
		if !ok || r.digest != opts.Digest || r.repo != (repo{"docker.io", "nixos/nix"}) {
			t.Fatalf("change %v: new text is not a pinned reference", c)
		}
		// The change starts where in and o first differ, or earlier when
		// both begin with the same text there.
		p := 0
		for p < len(in) && p < len(o) && in[p] == o[p] {
			p++
		}
		s := -1
		for i := p; i >= 0; i-- {
			if bytes.HasPrefix(in[i:], []byte(c.Old)) && bytes.HasPrefix(o[i:], []byte(c.New)) {
				s = i
				break
			}
		}
		if s < 0 {
			t.Fatalf("change %v is not where %q and %q first differ:\n in %q\nout %q", c, src, out, in[p:], o[p:])
		}
		in, o = in[s+len(c.Old):], o[s+len(c.New):]
	}
	if !bytes.Equal(in, o) {
		t.Fatalf("bytes outside the changes differ after the last change: %q vs %q", in, o)
	}
	again, more, err := Rewrite(out, opts)
	if err != nil || len(more) != 0 || !bytes.Equal(again, out) {
		t.Fatalf("Rewrite is not idempotent on %q: %v, %v", out, more, err)
	}
}
