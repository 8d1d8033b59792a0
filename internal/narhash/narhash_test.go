package narhash_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/narhash"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestOfMatchesNix compares the hash with `nix-store --dump | sha256sum`
// on a tree with a file, an executable, a symlink and a subdir.
func TestOfMatchesNix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nix/store/00000000000000000000000000000000-dep/bin", filepath.Join(dir, "dep")); err != nil {
		t.Fatal(err)
	}
	dump := nixtest.Nix(t, nil, "nix-store", "--dump", dir)
	sum := sha256.Sum256([]byte(dump))
	got, size, err := narhash.Of(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + hex.EncodeToString(sum[:]); got != want || size != int64(len(dump)) {
		t.Errorf("Of = %s, %d; Nix says %s, %d", got, size, want, len(dump))
	}
}
