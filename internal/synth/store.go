// Package synth builds Nix stores and nixos/nix-shaped images in Go alone:
// real store trees, real NAR hashes and a db that Nix itself accepts. The
// demo serves them; tests and benchmarks use them where building with Nix
// would be slow, and check the result with Nix.
package synth

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// File is one entry of a store path. Name is relative to the store path;
// an empty Name makes the store path itself a regular file. Data may name
// other paths of the same Spec as @name@, replaced by their store path.
type File struct {
	Name string
	Data string
	Exec bool
	// Link makes the entry a symlink to Link (after @name@ replacement).
	Link string
}

// Path is one store path to build.
type Path struct {
	Name  string
	Files []File
	// Refs names other paths of the Spec this one references.
	Refs []string
	// Seed, when set, overrides Spec.Seed for this path's hash: paths with
	// equal name and seed are the same store path in different specs.
	Seed string
}

// Spec describes a whole store.
type Spec struct {
	// Seed makes store path hashes distinct between otherwise equal specs.
	Seed  string
	Paths []Path
	// Profile names the path that the default profile points at.
	Profile string
}

// Info is the registration of one built path, as the Nix db holds it.
type Info struct {
	Path    string
	NarHash string // "sha256:<base16>"
	NarSize int64
	Refs    []string
}

// StorePath returns the absolute store path that spec seed gives name.
func StorePath(seed, name string) string {
	sum := sha256.Sum256([]byte("synth:" + seed + ":" + name))
	return "/nix/store/" + nixbase32.EncodeToString(sum[:20]) + "-" + name
}

// StorePath returns the absolute store path spec gives p (p's seed, or
// the spec's).
func (s Spec) StorePath(p Path) string {
	seed := s.Seed
	if p.Seed != "" {
		seed = p.Seed
	}
	return StorePath(seed, p.Name)
}

// StorePaths returns the store paths of all of spec's paths, sorted.
func (s Spec) StorePaths() []string {
	out := make([]string, 0, len(s.Paths))
	for _, p := range s.Paths {
		out = append(out, s.StorePath(p))
	}
	sort.Strings(out)
	return out
}

// Build writes the store of spec under root (root/nix/store, root/nix/var/nix/db)
// and returns the registration of every path.
func Build(root string, spec Spec) ([]Info, error) {
	infos, err := WriteTrees(root, spec)
	if err != nil {
		return nil, err
	}
	for i := range infos {
		h, n, err := NarHash(filepath.Join(root, infos[i].Path))
		if err != nil {
			return nil, err
		}
		infos[i].NarHash, infos[i].NarSize = h, n
	}
	if err := Register(root, infos, 1); err != nil {
		return nil, err
	}
	return infos, nil
}

// WriteTrees writes the store paths of spec (canonicalised) and the default
// profile under root, but no db: the returned infos have no hash yet.
func WriteTrees(root string, spec Spec) ([]Info, error) {
	byName := map[string]string{}
	for _, p := range spec.Paths {
		if _, dup := byName[p.Name]; dup {
			return nil, fmt.Errorf("synth: path %q listed twice", p.Name)
		}
		byName[p.Name] = spec.StorePath(p)
	}
	expand := func(s string) string {
		for name, sp := range byName {
			s = strings.ReplaceAll(s, "@"+name+"@", sp)
		}
		return s
	}
	if err := os.MkdirAll(filepath.Join(root, "nix/store"), 0o755); err != nil {
		return nil, err
	}
	infos := make([]Info, 0, len(spec.Paths))
	for _, p := range spec.Paths {
		sp := byName[p.Name]
		dst := filepath.Join(root, sp)
		if err := writePath(dst, p.Files, expand); err != nil {
			return nil, fmt.Errorf("synth: writing %s: %w", sp, err)
		}
		info := Info{Path: sp}
		for _, r := range p.Refs {
			rp, ok := byName[r]
			if !ok {
				return nil, fmt.Errorf("synth: %s references unknown path %q", p.Name, r)
			}
			info.Refs = append(info.Refs, rp)
		}
		sort.Strings(info.Refs)
		if err := Canonicalise(dst); err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	if spec.Profile != "" {
		sp, ok := byName[spec.Profile]
		if !ok {
			return nil, fmt.Errorf("synth: profile names unknown path %q", spec.Profile)
		}
		if err := writeProfile(root, sp); err != nil {
			return nil, err
		}
	}
	return infos, nil
}

func writePath(dst string, files []File, expand func(string) string) error {
	if len(files) == 1 && files[0].Name == "" {
		return writeFile(dst, files[0], expand)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if f.Name == "" {
			return fmt.Errorf("a store path with several entries needs a name for each")
		}
		p := filepath.Join(dst, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFile(p, f, expand); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, f File, expand func(string) string) error {
	if f.Link != "" {
		return os.Symlink(expand(f.Link), p)
	}
	mode := os.FileMode(0o644)
	if f.Exec {
		mode = 0o755
	}
	return os.WriteFile(p, []byte(expand(f.Data)), mode)
}

// writeProfile lays out the default profile as the nixos/nix image does:
// nix/var/nix/profiles/default → default-1-link → the store path.
func writeProfile(root, storePath string) error {
	dir := filepath.Join(root, "nix/var/nix/profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(storePath, filepath.Join(dir, "default-1-link")); err != nil {
		return err
	}
	return os.Symlink("default-1-link", filepath.Join(dir, "default"))
}
