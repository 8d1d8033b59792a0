package seed

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClaimStagingRemovesStaleDirs(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, stagePrefix+"123", "nix/store/abc-x")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "f"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	// Store paths are read-only: the removal must cope.
	if err := os.Chmod(stale, 0o555); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "nix")
	if err := os.Mkdir(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	release, err := claimStaging(context.Background(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := os.Stat(filepath.Join(dir, stagePrefix+"123")); !os.IsNotExist(err) {
		t.Errorf("stale staging dir still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("claimStaging removed %s: %v", keep, err)
	}
}

func TestClaimStagingWaitsForHolder(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	release, err := claimStaging(context.Background(), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := claimStaging(ctx, dir, log); err == nil || !strings.Contains(err.Error(), "waiting for another seed or reconcile") {
		t.Fatalf("second claim while held: %v, want a wait that ends with the context", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := claimStaging(context.Background(), dir, log)
		if err == nil {
			r()
		}
		got <- err
	}()
	time.Sleep(150 * time.Millisecond)
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the claim did not follow the release")
	}
}
