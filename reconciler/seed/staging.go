package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
)

// stagePrefix starts the name of every staging dir (see reconciler/image).
const stagePrefix = ".hydrafy-stage-"

// claimStaging takes an exclusive flock on dir itself (no file is
// created: a failed seed leaves dir as it was), so that one seed or
// reconcile at a time stages into dir, then deletes the staging dirs that
// a run killed mid-stage left behind (they can be large). The returned
// func releases the lock.
func claimStaging(ctx context.Context, dir string, log *slog.Logger) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("claiming the staging area: %w", err)
	}
	for waited := false; ; waited = true {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("claiming the staging area: %w", err)
		}
		if !waited {
			log.Info("another seed or reconcile is staging into this store dir; waiting", "dir", dir)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another seed or reconcile staging into %s: %w", dir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("claiming the staging area: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			log.Info("removing a staging dir left by an interrupted run", "dir", e.Name())
			if err := fsutil.RemoveTree(filepath.Join(dir, e.Name())); err != nil {
				log.Warn("removing a stale staging dir", "err", err)
			}
		}
	}
	return func() { f.Close() }, nil
}
