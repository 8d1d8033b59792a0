package seed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// install moves a staged store into place with one rename: DIR itself when
// it was missing, DIR/nix when DIR had none, or an exchange of DIR/nix with
// the staged one (the old store then sits in the staging dir, which the
// caller removes). Unless told not to, the filesystem is synced before the
// rename so that a crash cannot leave a half-written store behind the new
// name.
func install(ctx context.Context, st *image.Staged, t target, sync bool) error {
	if sync {
		if err := syncTree(st.Dir); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("installing the store: %w", err)
	}
	staged := filepath.Join(st.Dir, "nix")
	live := filepath.Join(t.dir, "nix")
	switch {
	case !t.exists:
		if err := os.Chmod(st.Dir, 0o755); err != nil {
			return fmt.Errorf("installing the store: %w", err)
		}
		if err := os.Rename(st.Dir, t.dir); err != nil {
			return fmt.Errorf("installing the store at %s: %w", t.dir, err)
		}
		st.Dir = "" // moved: nothing left to remove
	case !t.holdsStore:
		if err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, live, unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("installing the store at %s: %w", live, err)
		}
	default:
		if err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, live, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("swapping in the new store at %s: %w", live, err)
		}
	}
	return syncDir(filepath.Dir(live))
}

// syncTree flushes the filesystem that holds dir.
func syncTree(dir string) error {
	if err := fsutil.SyncFilesystem(dir); err != nil {
		return fmt.Errorf("syncing the staged store: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
