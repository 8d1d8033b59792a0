package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFileAtomic(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestReplaceFileKeepsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceFile(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, %v; want 0640 kept", fi.Mode(), err)
	}
	if err := ReplaceFile(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("replacing a missing file succeeded")
	}
}

func TestWriteFileAtomicFailureLeavesOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A dir in place of the file: the rename fails, the temp file goes.
	q := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(q, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(q, []byte("new"), 0o644); err == nil {
		t.Fatal("writing over a non-empty dir succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestParseWriteback(t *testing.T) {
	for _, tc := range []struct {
		name, meminfo string
		want          int64
		err           string
	}{
		{"both lines", "MemTotal:       24576000 kB\nDirty:              1200 kB\nWriteback:            24 kB\nAnonPages: 5 kB\n", 1224 << 10, ""},
		{"zero", "Dirty: 0 kB\nWriteback: 0 kB\n", 0, ""},
		{"Writeback missing", "Dirty: 1200 kB\nWritebackTmp: 0 kB\n", 0, "no Dirty and Writeback lines"},
		{"not a number", "Dirty: lots kB\nWriteback: 0 kB\n", 0, `unexpected line "Dirty: lots kB"`},
		{"other unit", "Dirty: 12 MB\nWriteback: 0 kB\n", 0, `unexpected line "Dirty: 12 MB"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWriteback([]byte(tc.meminfo))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	// This machine's own file parses.
	if _, err := pendingWriteback(); err != nil {
		t.Errorf("reading this machine's /proc/meminfo: %v", err)
	}
}

func TestSweep(t *testing.T) {
	for _, tc := range []struct {
		dirty, own int64
		want       bool
	}{
		{0, 0, true},
		{45 << 20, 45 << 20, true},                 // only the trees' own pages wait
		{45<<20 + SweepSlack, 45 << 20, true},      // and the slack
		{45<<20 + SweepSlack + 1, 45 << 20, false}, // a job's gigabytes in flight
		{8 << 30, 100 << 20, false},
		{SweepSlack, -1, true},
	} {
		if got := Sweep(tc.dirty, tc.own); got != tc.want {
			t.Errorf("Sweep(%d, %d) = %v, want %v", tc.dirty, tc.own, got, tc.want)
		}
	}
}

// TestFlushTrees flushes trees of files, dirs and a dangling symlink, by
// both ways; a missing tree is an error either way.
func TestFlushTrees(t *testing.T) {
	dir := t.TempDir()
	var trees []string
	for _, name := range []string{"a", "b"} {
		root := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "sub", "f"), []byte("content"), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/nowhere", filepath.Join(root, "link")); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, root)
	}
	if _, err := FlushTrees(trees, 14); err != nil {
		t.Errorf("FlushTrees: %v", err)
	}
	if err := SyncTrees(trees); err != nil {
		t.Errorf("SyncTrees: %v", err)
	}
	if _, err := FlushTrees(nil, 0); err != nil {
		t.Errorf("FlushTrees of nothing: %v", err)
	}
	// A store path may be a symlink itself, dangling outside its store.
	link := filepath.Join(dir, "link-path")
	if err := os.Symlink("/nix/store/elsewhere", link); err != nil {
		t.Fatal(err)
	}
	if _, err := FlushTrees([]string{link, trees[0]}, 14); err != nil {
		t.Errorf("FlushTrees of a dangling symlink: %v", err)
	}
	missing := []string{filepath.Join(dir, "missing"), trees[0]}
	if _, err := FlushTrees(missing, 0); err == nil {
		t.Error("FlushTrees of a missing tree succeeded")
	}
	if err := SyncTrees(missing); err == nil {
		t.Error("SyncTrees of a missing tree succeeded")
	}
}

// TestWriteback: the filesystem is written back once the writer has
// written WritebackStep more, and never while other data than the
// writer's and the slack waits.
func TestWriteback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dirty int64
		sweep bool
	}{
		{"only the writer's data waits", WritebackStep, true},
		{"a job's gigabytes in flight", 8 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var written atomic.Int64
			w, err := startWriteback(t.TempDir(), written.Load, func() (int64, error) { return tc.dirty, nil })
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			written.Store(WritebackStep - 1)
			time.Sleep(200 * time.Millisecond)
			if n := w.Sweeps(); n != 0 {
				t.Fatalf("%d sweeps before the writer wrote a step", n)
			}
			written.Store(3 * WritebackStep)
			deadline := time.Now().Add(10 * time.Second)
			for w.Sweeps() == 0 && time.Now().Before(deadline) && tc.sweep {
				time.Sleep(10 * time.Millisecond)
			}
			if !tc.sweep {
				time.Sleep(200 * time.Millisecond)
			}
			if err := w.Stop(); err != nil {
				t.Fatal(err)
			}
			if got := w.Sweeps() > 0; got != tc.sweep {
				t.Errorf("swept %d times, want a sweep: %v", w.Sweeps(), tc.sweep)
			}
			if err := w.Stop(); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
		})
	}
}
