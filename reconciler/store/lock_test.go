package store

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// holdShared starts `flock -o -s big-lock sleep SECONDS` (util-linux), as a
// Nix process holds the store, and returns once the lock is held.
func holdShared(t *testing.T, live string, seconds string) *exec.Cmd {
	t.Helper()
	lock := filepath.Join(dbPath(live), "big-lock")
	cmd := exec.Command("flock", "-o", "-s", lock, "sleep", seconds)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for {
		f, err := os.Open(lock)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		f.Close()
		if err != nil {
			return cmd // someone else holds it: the child
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMergeWaitsForNix fails a merge while a process holds the big-lock
// shared past the timeout, and succeeds when it lets go in time.
func TestMergeWaitsForNix(t *testing.T) {
	ctx := context.Background()
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))

	holdShared(t, live, "30")
	before := nixtest.Snapshot(t, live)
	_, err := Merge(ctx, live, staged, MergeOptions{LockTimeout: 300 * time.Millisecond})
	want := "a Nix process still has the store open (" + filepath.Join(dbPath(live), "big-lock") + " held) after 300ms"
	if err == nil || err.Error() != want {
		t.Fatalf("merge under a shared lock: %v, want %q", err, want)
	}
	nixtest.Unchanged(t, live, before, live)

	// A holder that exits within the timeout: the merge waits, then runs.
	other := template(t, "go-a", goStore(releaseA))
	holder := holdShared(t, other, "1")
	rep, err := Merge(ctx, other, staged, MergeOptions{LockTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if holder.ProcessState == nil {
		holder.Wait()
	}
	if len(rep.Added) != 3 || rep.LockWait <= 0 {
		t.Errorf("merge after waiting: %d added, lock wait %v", len(rep.Added), rep.LockWait)
	}
	nixtest.Verify(t, other)
}

// TestLockCancelled stops waiting when the context ends.
func TestLockCancelled(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	holdShared(t, live, "30")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Lock(ctx, live, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("lock with an ended context: %v", err)
	}
	// Held by Lock, the big-lock keeps a Nix process (shared flock) out.
	other := template(t, "go-a", goStore(releaseA))
	unlock, err := Lock(context.Background(), other, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dbPath(other), "big-lock")
	if out, err := exec.Command("flock", "-n", "-s", lock, "true").CombinedOutput(); err == nil {
		t.Errorf("a shared flock succeeded while Lock held %s: %s", lock, out)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("flock", "-n", "-s", lock, "true").CombinedOutput(); err != nil {
		t.Errorf("a shared flock failed after unlock: %v %s", err, out)
	}
}
