package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// ReleaseOptions shape a generated nixos/nix-like release.
type ReleaseOptions struct {
	// Version names the release ("2.24.9"); paths not shared get it as seed.
	Version string
	// Paths is the number of store paths (at least 4).
	Paths int
	// Shared is how many of the paths (the first ones, dependencies) are
	// identical to every other release generated with the same Base.
	Shared int
	// Base seeds the shared paths.
	Base string
	// FilesPerPath and FileSize size each path's tree.
	FilesPerPath int
	FileSize     int
}

// Release returns a Spec shaped like a nixos/nix release: a chain of
// library paths that reference each other, absolute and relative symlinks,
// executables and nested read-only dirs, and a profile path (nix-<version>)
// that references them all.
func Release(o ReleaseOptions) Spec {
	if o.Paths < 4 {
		o.Paths = 4
	}
	if o.FilesPerPath < 1 {
		o.FilesPerPath = 1
	}
	if o.FileSize < 16 {
		o.FileSize = 16
	}
	if o.Base == "" {
		o.Base = "base"
	}
	spec := Spec{Seed: o.Version}
	var names []string
	for i := 0; i < o.Paths-1; i++ {
		name := fmt.Sprintf("lib%03d-1.0", i)
		p := Path{Name: name}
		if i >= o.Shared {
			name = fmt.Sprintf("pkg%03d-%s", i, o.Version)
			p.Name = name
		} else {
			p.Seed = o.Base
		}
		prng := rand.New(rand.NewPCG(uint64(i), hashSeed(o.Version)))
		if i < o.Shared {
			prng = rand.New(rand.NewPCG(uint64(i), hashSeed(o.Base)))
		}
		for f := 0; f < o.FilesPerPath; f++ {
			p.Files = append(p.Files, File{
				Name: fmt.Sprintf("share/%s/d%02d/f%04d", name, f%7, f),
				Data: filler(prng, o.FileSize),
			})
		}
		p.Files = append(p.Files, File{Name: "bin/" + strings.SplitN(name, "-", 2)[0], Exec: true,
			Data: "#!/bin/sh\necho " + name + "\n"})
		if len(names) > 0 {
			dep := names[len(names)-1]
			p.Refs = append(p.Refs, dep)
			p.Files = append(p.Files,
				File{Name: "lib/dep", Link: "@" + dep + "@/bin"},
				File{Name: "nix-support/propagated", Data: "@" + dep + "@\n"})
		}
		p.Files = append(p.Files, File{Name: "lib/self", Link: "../bin"})
		names = append(names, name)
		spec.Paths = append(spec.Paths, p)
	}
	nix := Path{Name: "nix-" + o.Version, Refs: append([]string(nil), names...)}
	nix.Files = append(nix.Files, File{Name: "bin/nix", Exec: true, Data: "#!/bin/sh\necho nix (Nix) " + o.Version + "\n"})
	for _, n := range names {
		nix.Files = append(nix.Files, File{Name: "lib/" + n, Link: "@" + n + "@"})
	}
	spec.Paths = append(spec.Paths, nix)
	spec.Profile = nix.Name
	return spec
}

func hashSeed(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// filler returns n bytes of text that compress like binaries do (partly).
func filler(r *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789\n"
	b := make([]byte, n)
	for i := range b {
		if i%64 < 32 {
			b[i] = alphabet[r.IntN(len(alphabet))]
		} else {
			b[i] = byte('a' + i%26)
		}
	}
	return string(b)
}
