package image

import (
	"fmt"
	"path"
)

// The NAR size of a store path is the sum of what each of its entries adds
// to the serialisation, whatever the order the entries come in: the
// extractor adds it up as it goes and stops a store path the moment it
// grows past the size its db row declares. The sizes follow the NAR format
// (nix-archive-1, libutil archive.cc): every string is a length, its bytes
// and zero padding to 8 bytes.

// narStr is the size of a NAR string of n bytes.
func narStr(n int) int64 { return 8 + int64(n+7)&^7 }

const (
	// narHeader is the "nix-archive-1" magic.
	narHeader = 24
	// dirNode is "(", "type", "directory", ")" around a directory's entries.
	dirNode = 72
)

// entryCost is "entry", "(", "name", name, "node", …, ")" around a node.
func entryCost(rel string) int64 {
	if rel == "" {
		return 0 // the store path itself is the root node
	}
	return 80 + narStr(len(path.Base(rel)))
}

// fileNode is "(", "type", "regular", ["executable", ""], "contents",
// the contents, ")".
func fileNode(size int64, exec bool) int64 {
	n := 88 + (size+7)&^7
	if exec {
		n += 32
	}
	return n
}

// symlinkNode is "(", "type", "symlink", "target", target, ")".
func symlinkNode(target string) int64 { return 80 + narStr(len(target)) }

// grow adds n NAR bytes to p, refusing to pass its declared size.
func (p *storePath) grow(n int64) error {
	if p.narBytes+n > p.declared {
		return fmt.Errorf("store path /nix/store/%s holds more than the %d bytes of NAR its image db row declares (narSize): refused before writing more", p.name, p.declared)
	}
	p.narBytes += n
	return nil
}
