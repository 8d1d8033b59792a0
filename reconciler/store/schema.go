package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// SchemaVersion is the Nix db schema version this package reads and writes.
const SchemaVersion = 10

// ErrSchema marks a store whose db schema cannot be merged: missing,
// corrupt, unsupported, or different from the other side's.
var ErrSchema = errors.New("db schema")

// readSchema returns the version in root's db/schema. Nix writes the
// number with no newline and calls anything else corrupt.
func readSchema(root string) (int, error) {
	name := filepath.Join(dbPath(root), "schema")
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("%w: reading %s: %w", ErrSchema, name, err)
	}
	v, err := strconv.Atoi(string(b))
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: %s is corrupt (%q)", ErrSchema, name, b)
	}
	return v, nil
}

// checkSchemas refuses a merge unless both stores have the same, known schema.
func checkSchemas(liveDir, stagedDir string) error {
	live, err := readSchema(liveDir)
	if err != nil {
		return fmt.Errorf("live store: %w", err)
	}
	staged, err := readSchema(stagedDir)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if live != staged {
		return fmt.Errorf("%w: the live store has version %d and the image version %d; merging across versions is not possible, use --replace to install exactly the image's store", ErrSchema, live, staged)
	}
	if live != SchemaVersion {
		return fmt.Errorf("%w: version %d is not supported (known: %d); use --replace to install exactly the image's store", ErrSchema, live, SchemaVersion)
	}
	return nil
}
