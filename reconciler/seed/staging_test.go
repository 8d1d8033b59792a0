package seed

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestStagingAreas: an area left by a killed run (no flock) is deleted,
// read-only store dirs and all; an area in use is not; two areas can be
// in use at once (the reconciler stages every missing image before it
// merges any).
func TestStagingAreas(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	stale := filepath.Join(dir, stagePrefix+"123", "nix/store/abc-x")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "f"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stale, 0o555); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "nix")
	if err := os.Mkdir(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := newStagingArea(context.Background(), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, stagePrefix+"123")); !os.IsNotExist(err) {
		t.Errorf("stale staging dir still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("newStagingArea removed %s: %v", keep, err)
	}
	b, err := newStagingArea(context.Background(), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.dir); err != nil {
		t.Errorf("a second area removed the first, in use: %v", err)
	}
	for _, area := range []*stagingArea{a, b} {
		if err := area.Close(); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "nix" {
		t.Errorf("left in the store dir: %v", entries)
	}
}
