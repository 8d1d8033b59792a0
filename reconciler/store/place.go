package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
	"gitlab.com/hydrafy/hydrafy/internal/narhash"
)

// trashPrefix names entries of the live nix/store being deleted. Nix
// ignores names starting with a dot; the next merge deletes them.
const trashPrefix = ".hydrafy-trash-"

// ErrStagedMissing marks a merge stopped (before any change) because the
// staged store lacks a path the live store does not hold either: its layer
// was skipped while the path was valid, or the staged dir was damaged.
// Staging again without skipping layers fixes it.
var ErrStagedMissing = errors.New("the image store lacks a path to add: stage the image again")

type moveKind int

const (
	// moveRename renames the staged path into the live store.
	moveRename moveKind = iota
	// moveReplace deletes an unregistered leftover, then renames.
	moveReplace
	// moveAdopt registers a leftover that matches the image's hash.
	moveAdopt
)

// move is how one path to add gets into the live store.
type move struct {
	path string
	kind moveKind
}

// prepareMoves decides, before anything changes, how each path to add gets
// into the live store. An unregistered entry of the same name in the live
// store is the leftover of an interrupted merge (no Nix process runs under
// the big-lock): it is replaced by the staged copy, or, when the staged
// copy is gone (renamed in by that merge), registered if its NAR hash is
// the image's.
func prepareMoves(liveDir, stagedDir string, add []row) ([]move, error) {
	if len(add) > 0 {
		if err := sameFilesystem(storePath(liveDir), storePath(stagedDir)); err != nil {
			return nil, err
		}
	}
	moves := make([]move, 0, len(add))
	for _, r := range add {
		src, dst := filepath.Join(stagedDir, r.path), filepath.Join(liveDir, r.path)
		srcOK, err := exists(src)
		if err != nil {
			return nil, err
		}
		dstOK, err := exists(dst)
		if err != nil {
			return nil, err
		}
		switch {
		case srcOK && !dstOK:
			moves = append(moves, move{r.path, moveRename})
		case srcOK && dstOK:
			moves = append(moves, move{r.path, moveReplace})
		case dstOK:
			h, err := narHash(dst)
			if err != nil {
				return nil, err
			}
			if h != r.hash {
				return nil, fmt.Errorf("%w: %s (and the unregistered %s has hash %s, not the image's %s)", ErrStagedMissing, r.path, dst, h, r.hash)
			}
			moves = append(moves, move{r.path, moveAdopt})
		default:
			return nil, fmt.Errorf("%w: %s, which the live store does not hold (collected as garbage since staging?)", ErrStagedMissing, r.path)
		}
	}
	return moves, nil
}

// sameFilesystem refuses a staged store that paths cannot be renamed from.
func sameFilesystem(live, staged string) error {
	var a, b unix.Stat_t
	if err := unix.Stat(live, &a); err != nil {
		return fmt.Errorf("checking %s: %w", live, err)
	}
	if err := unix.Stat(staged, &b); err != nil {
		return fmt.Errorf("checking %s: %w", staged, err)
	}
	if a.Dev != b.Dev {
		return fmt.Errorf("the staged store %s is on another filesystem than the live store %s: stage it inside the store dir", staged, live)
	}
	return nil
}

func (m move) apply(liveDir, stagedDir string) error {
	src, dst := filepath.Join(stagedDir, m.path), filepath.Join(liveDir, m.path)
	switch m.kind {
	case moveAdopt:
		return nil
	case moveReplace:
		trash := filepath.Join(filepath.Dir(dst), trashPrefix+filepath.Base(dst))
		if err := os.Rename(dst, trash); err != nil {
			return fmt.Errorf("moving leftover %s away: %w", dst, err)
		}
		at("trashed")
		if err := removeTree(trash); err != nil {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("moving %s into the live store: %w", m.path, err)
	}
	at("renamed")
	return nil
}

// undo moves a renamed path back to the staging dir (after a failed
// registration); adopted leftovers stay where they are.
func (m move) undo(liveDir, stagedDir string) error {
	if m.kind == moveAdopt {
		return nil
	}
	return os.Rename(filepath.Join(liveDir, m.path), filepath.Join(stagedDir, m.path))
}

// emptyTrash deletes leftovers moved away by an interrupted merge.
func emptyTrash(liveDir string) error {
	entries, err := os.ReadDir(storePath(liveDir))
	if err != nil {
		return fmt.Errorf("reading live store: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), trashPrefix) {
			if err := removeTree(filepath.Join(storePath(liveDir), e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeTree deletes a store path tree, whose dirs are read-only.
func removeTree(p string) error { return fsutil.RemoveTree(p) }

func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("checking %s: %w", p, err)
}

// syncPaths flushes the files of paths (store paths in the live store) and
// the live store dir to disk before the paths are registered: after a
// power loss, a registered path must exist with its content. Only these
// trees are synced, not the whole filesystem (where jobs may have
// gigabytes in flight).
func syncPaths(liveDir string, paths []string) error {
	trees := make([]string, len(paths))
	for i, p := range paths {
		trees[i] = filepath.Join(liveDir, p)
	}
	if err := fsutil.SyncTrees(trees); err != nil {
		return fmt.Errorf("syncing added paths: %w", err)
	}
	if err := fsutil.Fsync(storePath(liveDir)); err != nil {
		return fmt.Errorf("syncing live store: %w", err)
	}
	return nil
}

// narHash returns the NAR hash of the tree at p in the db's form.
func narHash(p string) (string, error) {
	h, _, err := narhash.Of(p)
	return h, err
}
