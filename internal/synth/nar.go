package synth

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gitlab.com/hydrafy/hydrafy/internal/narhash"
)

// NarHash returns the NAR hash of the tree at p in the db's form and the
// NAR's size.
func NarHash(p string) (string, int64, error) { return narhash.Of(p) }

// Canonicalise gives the tree at p the metadata Nix gives store paths:
// files 0444 or 0555, dirs 0555, mtime 1. Ownership is left to the caller.
func Canonicalise(p string) error {
	var dirs []string
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
		case d.IsDir():
			dirs = append(dirs, q)
		default:
			mode := os.FileMode(0o444)
			if info.Mode()&0o111 != 0 {
				mode = 0o555
			}
			if err := os.Chmod(q, mode); err != nil {
				return err
			}
		}
		return setMtime(q)
	})
	if err != nil {
		return fmt.Errorf("canonicalising %s: %w", p, err)
	}
	// Directories last, deepest first: a read-only dir cannot be changed below.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
		if err := setMtime(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}
