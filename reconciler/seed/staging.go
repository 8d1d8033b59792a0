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

// stagePrefix starts the name of every staging area in a store dir.
const stagePrefix = ".hydrafy-stage-"

// stagingArea is a dir inside the store dir (the same filesystem: merges
// rename staged paths in) that holds one staged image. It stays flocked
// while in use, so that another run can tell it from the leftover of a
// run killed mid-stage, which can be large and is deleted.
type stagingArea struct {
	dir string
	f   *os.File
}

// newStagingArea deletes the stale staging areas in dir and makes a new
// one. It holds an flock on dir itself meanwhile (no file is created there:
// a failed seed leaves dir as it was), so that two runs never take each
// other's fresh area for a stale one.
func newStagingArea(ctx context.Context, dir string, log *slog.Logger) (*stagingArea, error) {
	d, err := lockWait(ctx, dir, log)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	removeStale(dir, log)
	tmp, err := os.MkdirTemp(dir, stagePrefix)
	if err != nil {
		return nil, fmt.Errorf("making a staging dir: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp)
		return nil, fmt.Errorf("locking the staging dir: %w", err)
	}
	return &stagingArea{dir: tmp, f: f}, nil
}

// Close deletes the area and what it holds.
func (a *stagingArea) Close() error {
	defer a.f.Close()
	return fsutil.RemoveTree(a.dir)
}

// lockWait takes an exclusive flock on dir, waiting while another run
// holds it (briefly: only while it sets up its staging area).
func lockWait(ctx context.Context, dir string, log *slog.Logger) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("claiming the staging area: %w", err)
	}
	for waited := false; ; waited = true {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("claiming the staging area: %w", err)
		}
		if !waited {
			log.Info("another seed or reconcile is setting up its staging dir; waiting", "dir", dir)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another seed or reconcile staging into %s: %w", dir, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SweepStaging deletes the staging areas in dir that no run holds (left
// by a killed seed or reconcile); areas in use stay.
func SweepStaging(ctx context.Context, dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := lockWait(ctx, dir, log)
	if err != nil {
		return err
	}
	defer d.Close()
	removeStale(dir, log)
	return nil
}

// removeStale deletes the staging areas in dir that no run holds.
func removeStale(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("looking for stale staging dirs", "err", err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagePrefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		held := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
		if !held {
			log.Info("removing a staging dir left by an interrupted run", "dir", p)
			if err := fsutil.RemoveTree(p); err != nil {
				log.Warn("removing a stale staging dir", "err", err)
			}
		}
		f.Close()
	}
}
