package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gitlab.com/hydrafy/hydrafy/bot/watch"
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

// writeWatchState replaces the state file atomically: a crash leaves the
// old file or the new one, never a torn one.
func writeWatchState(path string, st watch.State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("writing watch state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("writing watch state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".watch-*.json")
	if err != nil {
		return fmt.Errorf("writing watch state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing watch state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing watch state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing watch state: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing watch state: %w", err)
	}
	return nil
}
