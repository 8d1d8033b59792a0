// Package store manages the live Nix store that runners share:
// DIR/nix/store and DIR/nix/var/nix/db. It merges a staged image's store
// into it (rename the missing paths in, register them in one transaction),
// takes the big-lock that proves no Nix process has the store open, and
// records which image layers the store already holds (DIR/.hydrafy/).
package store

import "path/filepath"

// Paths inside a store root (a live DIR or a staged dir).
const (
	storeDir = "nix/store"
	dbDir    = "nix/var/nix/db"
)

func storePath(root string) string { return filepath.Join(root, storeDir) }
func dbPath(root string) string    { return filepath.Join(root, dbDir) }

// hook, when set, is called at each named step of a merge. Tests set it to
// kill the process at that step and prove the merge survives.
var hook func(step string)

func at(step string) {
	if hook != nil {
		hook(step)
	}
}
