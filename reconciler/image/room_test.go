package image

import (
	"errors"
	"syscall"
	"testing"

	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// TestCheckRoomIsNoSpace: a stage refused for want of room is a full disk
// to its callers (the daemon collects garbage then), and says so in one line.
func TestCheckRoomIsNoSpace(t *testing.T) {
	dir := t.TempDir()
	rows := map[string]store.PathInfo{"/nix/store/a": {NarSize: 1 << 60}}
	err := checkRoom(dir, rows, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want one that is ENOSPC", err)
	}
	if err := checkRoom(dir, rows, map[string]bool{"/nix/store/a": true}); err != nil {
		t.Errorf("skipped paths need no room: %v", err)
	}
}
