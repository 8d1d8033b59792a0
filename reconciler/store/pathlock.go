package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// pathLock is Nix's lock on one store path: an exclusive flock on
// nix/store/<hash>-<name>.lock, which every Nix process takes before it
// writes the path (addToStore, substitution, a build's outputs).
type pathLock struct {
	name string
	f    *os.File
}

// lockStorePath takes the lock on path (/nix/store/…) in liveDir as Nix's
// PathLocks::lockPaths does: open or create the lock file, flock it
// exclusively (waiting, as Nix waits), and start again on a fresh file when
// the one locked has a size other than 0: its previous holder deleted it
// (unlink, then "d") while this process waited on the old inode.
func lockStorePath(liveDir, path string, log *slog.Logger) (*pathLock, error) {
	name := filepath.Join(liveDir, path) + ".lock"
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", name, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			if !errors.Is(err, unix.EWOULDBLOCK) {
				f.Close()
				return nil, fmt.Errorf("locking %s: %w", name, err)
			}
			log.Info("waiting for a Nix process writing the same store path", "lock", name)
			at("lock-wait")
			if err := flockRetry(f, unix.LOCK_EX); err != nil {
				f.Close()
				return nil, fmt.Errorf("locking %s: %w", name, err)
			}
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			f.Close()
			return nil, fmt.Errorf("checking %s: %w", name, err)
		}
		if st.Size == 0 {
			return &pathLock{name: name, f: f}, nil
		}
		// Stale: deleted by its last holder. Lock the file now there.
		f.Close()
	}
}

// flockRetry is a blocking flock that restarts after a signal.
func flockRetry(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// release gives the lock up as Nix does with deletion on: unlink the file,
// then write "d" into it (a process already waiting on this inode then
// sees a size of 1 and reopens), then close, which drops the flock.
func (l *pathLock) release() error {
	err := os.Remove(l.name)
	if errors.Is(err, os.ErrNotExist) {
		// A garbage collection in a job deleted it: nothing to unlink.
		err = nil
	}
	if _, werr := l.f.Write([]byte("d")); werr != nil {
		err = errors.Join(err, werr)
	}
	if cerr := l.f.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("releasing %s: %w", l.name, err)
	}
	return nil
}

// pathLocks holds the locks of a batch of store paths.
type pathLocks []*pathLock

// lockStorePaths locks every path in sorted order, as Nix does, so that
// two writers locking overlapping batches cannot deadlock. On an error the
// locks taken so far are released.
func lockStorePaths(liveDir string, paths []string, log *slog.Logger) (pathLocks, error) {
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	locks := make(pathLocks, 0, len(sorted))
	for _, p := range sorted {
		l, err := lockStorePath(liveDir, p, log)
		if err != nil {
			return nil, errors.Join(err, locks.release())
		}
		locks = append(locks, l)
		at("path-locked")
	}
	return locks, nil
}

// release releases every lock, in reverse order.
func (ls pathLocks) release() error {
	var errs []error
	for i := len(ls) - 1; i >= 0; i-- {
		if err := ls[i].release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
