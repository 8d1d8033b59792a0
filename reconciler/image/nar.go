package image

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"strings"
)

// narStream computes a store path's NAR hash from its tar entries as they
// are extracted, so that the files need not be read back. It needs the
// entries in NAR order: each directory before its contents, names within a
// directory in ascending byte order, a directory's subtree before its next
// sibling (the order of `tar --sort=name` and of a depth-first walk). Any
// other order, an implicit directory or a hardlink makes it give up
// (broken); the caller then hashes the extracted tree instead.
//
// The hash covers exactly the bytes and names written to disk: file
// contents are hashed as they are written, and the extractor creates every
// name exclusively in a fresh private staging dir.
type narStream struct {
	h      *countHash
	broken bool
	done   bool     // the store path itself is a file or a symlink
	stack  []string // open directories' last child names; [0] is the root
	path   []string // names of the open directories below the root
	buf    [8]byte
}

// countHash is a hash that counts the bytes written: the NAR's size.
type countHash struct {
	hash.Hash
	n int64
}

func (c *countHash) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return c.Hash.Write(b)
}

func newNarStream() *narStream {
	n := &narStream{h: &countHash{Hash: sha256.New()}}
	n.str("nix-archive-1")
	return n
}

// str writes s as a NAR string: its length, its bytes, zero padding.
func (n *narStream) str(s string) {
	binary.LittleEndian.PutUint64(n.buf[:], uint64(len(s)))
	n.h.Write(n.buf[:])
	n.h.Write([]byte(s))
	n.pad(int64(len(s)))
}

func (n *narStream) pad(size int64) {
	if r := size % 8; r != 0 {
		clear(n.buf[:])
		n.h.Write(n.buf[:8-r])
	}
}

// enter positions the stream at the entry rel (relative to the store path,
// "" for the store path itself) and opens its node; it reports false, and
// breaks the stream, when rel comes out of NAR order.
func (n *narStream) enter(rel string) bool {
	if n.broken {
		return false
	}
	if n.done {
		n.broken = true
		return false
	}
	if rel == "" {
		if len(n.stack) > 0 {
			n.broken = true
			return false
		}
		n.str("(")
		return true
	}
	if len(n.stack) == 0 {
		n.broken = true // the root must come first
		return false
	}
	comps := strings.Split(rel, "/")
	dir, name := comps[:len(comps)-1], comps[len(comps)-1]
	// Close the open directories that are no ancestors of rel.
	keep := 0
	for keep < len(n.path) && keep < len(dir) && n.path[keep] == dir[keep] {
		keep++
	}
	if keep < len(dir) {
		n.broken = true // its parent is closed already or was never opened
		return false
	}
	for len(n.path) > keep {
		n.closeDir()
	}
	if last := n.stack[len(n.stack)-1]; last != "" && name <= last {
		n.broken = true
		return false
	}
	n.stack[len(n.stack)-1] = name
	n.str("entry")
	n.str("(")
	n.str("name")
	n.str(name)
	n.str("node")
	n.str("(")
	return true
}

// closeDir ends the innermost open directory below the root.
func (n *narStream) closeDir() {
	n.str(")") // its node
	n.str(")") // its entry
	n.stack = n.stack[:len(n.stack)-1]
	n.path = n.path[:len(n.path)-1]
}

// dir records directory rel.
func (n *narStream) dir(rel string) {
	if !n.enter(rel) {
		return
	}
	n.str("type")
	n.str("directory")
	n.stack = append(n.stack, "")
	if rel != "" {
		n.path = append(n.path, rel[strings.LastIndexByte(rel, '/')+1:])
	}
}

// symlink records symlink rel to target.
func (n *narStream) symlink(rel, target string) {
	if !n.enter(rel) {
		return
	}
	n.str("type")
	n.str("symlink")
	n.str("target")
	n.str(target)
	n.leaf(rel)
}

// file starts regular file rel of size bytes and returns the writer its
// contents go to, or nil when the stream is broken. end must follow once
// all size bytes are written.
func (n *narStream) file(rel string, exec bool, size int64) io.Writer {
	if !n.enter(rel) {
		return nil
	}
	n.str("type")
	n.str("regular")
	if exec {
		n.str("executable")
		n.str("")
	}
	n.str("contents")
	binary.LittleEndian.PutUint64(n.buf[:], uint64(size))
	n.h.Write(n.buf[:])
	return n.h
}

// end finishes regular file rel of size bytes.
func (n *narStream) end(rel string, size int64) {
	n.pad(size)
	n.leaf(rel)
}

// leaf closes the node of a file or symlink (and its entry).
func (n *narStream) leaf(rel string) {
	n.str(")")
	if rel == "" {
		n.done = true
		return
	}
	n.str(")")
}

// sum returns the NAR hash as sha256:<hex> and the NAR's size, or false
// when the stream could not follow the entries.
func (n *narStream) sum() (string, int64, bool) {
	if n.broken || (!n.done && len(n.stack) == 0) {
		return "", 0, false
	}
	for len(n.path) > 0 {
		n.closeDir()
	}
	if len(n.stack) == 1 {
		n.str(")") // the root directory's node
		n.stack = nil
		n.done = true
	}
	return "sha256:" + hex.EncodeToString(n.h.Sum(nil)), n.h.n, true
}
