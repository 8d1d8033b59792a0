package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockPoll is how often Lock retries the non-blocking flock.
const lockPoll = 100 * time.Millisecond

// Lock takes the exclusive flock on liveDir's db/big-lock, which succeeds
// only when no Nix process has the store open (every Nix process holds it
// shared for its lifetime). It polls until timeout and then fails with a
// message saying so; zero or less means DefaultLockTimeout. The returned
// unlock releases the lock.
func Lock(ctx context.Context, liveDir string, timeout time.Duration) (unlock func() error, err error) {
	return lockBig(ctx, liveDir, timeout, unix.LOCK_EX, "a Nix process still has the store open")
}

// LockShared takes the big-lock shared, as every Nix process holds it for
// its lifetime: it only waits while a process holds it exclusively (a
// drained merge, a replace, a schema migration), polling until timeout.
// Nix processes open and use the store meanwhile.
func LockShared(ctx context.Context, liveDir string, timeout time.Duration) (unlock func() error, err error) {
	return lockBig(ctx, liveDir, timeout, unix.LOCK_SH, "another process holds the store exclusively")
}

// lockBig flocks db/big-lock with how (LOCK_EX or LOCK_SH), polling until
// timeout; busy says who holds it when the wait fails.
func lockBig(ctx context.Context, liveDir string, timeout time.Duration, how int, busy string) (unlock func() error, err error) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	name := filepath.Join(dbPath(liveDir), "big-lock")
	// Nix creates big-lock 0600 when it first opens the store.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", name, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s (%s held) after %v", busy, name, timeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-time.After(min(lockPoll, time.Until(deadline))):
		}
	}
	return func() error {
		// Closing the file releases the flock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("unlocking %s: %w", name, err)
		}
		return nil
	}, nil
}
