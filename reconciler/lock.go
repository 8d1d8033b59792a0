package reconciler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrStateInUse reports a state dir locked by another hydrafy process
// (the daemon, usually).
var ErrStateInUse = errors.New("in use by another hydrafy process")

// lockStateDir takes an exclusive flock on the state dir's lock file, so
// that `hydrafy reconcile` and a running `hydrafy serve` never both act on
// the runner. The kernel drops the lock when the process dies.
func lockStateDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	path := filepath.Join(dir, "reconciler.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state dir %s is %w", dir, ErrStateInUse)
		}
		return nil, fmt.Errorf("locking state dir: %w", err)
	}
	return f, nil
}
