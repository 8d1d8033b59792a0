package bot

import (
	"context"
	"path/filepath"
	"time"

	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/bot/watch"
	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
)

// readWatchState reads the watcher's observations; a missing file is an
// empty state (the first check).
func readWatchState(path string) (watch.State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return watch.State{}, nil
	}
	if err != nil {
		return watch.State{}, fmt.Errorf("reading watch state: %w", err)
	}
	var st watch.State
	if err := json.Unmarshal(data, &st); err != nil {
		return watch.State{}, fmt.Errorf("reading watch state %s: %w", path, err)
	}
	if st.Version > watch.StateVersion {
		return watch.State{}, fmt.Errorf("reading watch state %s: format version %d is newer than %d", path, st.Version, watch.StateVersion)
	}
	return st, nil
}

// readProposeState reads the proposer's memory (declined digests); a
// missing file is an empty state.
func readProposeState(path string) (propose.State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return propose.State{}, nil
	}
	if err != nil {
		return propose.State{}, fmt.Errorf("reading propose state: %w", err)
	}
	st, err := propose.ParseState(data)
	if err != nil {
		return propose.State{}, fmt.Errorf("reading propose state %s: %w", path, err)
	}
	return st, nil
}

// writeJSON replaces path with v as indented JSON, atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600)
}

// lockState takes an exclusive flock on DIR/bot.lock, waiting while
// another pass (`hydrafy check` next to the daemon's schedule) holds it,
// so that two passes never overwrite each other's state or both push.
func lockState(ctx context.Context, dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("locking the bot state: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "bot.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the bot state: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking the bot state: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another watch pass on %s: %w", dir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
