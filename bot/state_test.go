package bot

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLockStateExcludes: a second pass waits for the first one's lock and
// gives up with its context.
func TestLockStateExcludes(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockState(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockState(ctx, dir); err == nil || !strings.Contains(err.Error(), "waiting for another watch pass") {
		t.Fatalf("second lock while held: %v", err)
	}
	unlock()
	again, err := lockState(context.Background(), dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
