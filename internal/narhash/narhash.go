// Package narhash computes the NAR hash of a store path tree as the Nix db
// records it ("sha256:<base16>"): the check that every staged path is the
// one the image's db describes.
package narhash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/nix-community/go-nix/pkg/nar"
)

// Of returns the sha256 of the NAR serialisation of the tree at p, in the
// db's form, and the serialisation's size.
func Of(p string) (string, int64, error) {
	h := sha256.New()
	cw := &countWriter{w: h}
	if err := nar.DumpPath(cw, p); err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
