package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

const (
	envWALDB  = "HYDRAFY_TEST_WAL_DB"
	envWALSQL = "HYDRAFY_TEST_WAL_SQL"
)

// childWAL runs a statement on a db with checkpoints off and is killed
// (at the step "written") before closing: the committed row is left in
// the -wal file only.
func childWAL(db, stmt string) {
	conn, err := sql.Open("sqlite", "file:"+db+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)")
	if err == nil {
		_, err = conn.Exec(stmt)
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if hook := nixtest.KillHook(); hook != nil {
		hook("written")
	}
	os.Exit(0)
}

// cachePath makes a content-addressed path in a scratch store with Nix,
// moves its tree into live's store, and returns it with the statement that
// registers it.
func cachePath(t *testing.T, live, name string) (string, string) {
	t.Helper()
	scratch := template(t, "nix-empty-"+name, func(t testing.TB, root string) {
		nixtest.AddResult(t, root, name, nixtest.ResultOptions{})
	})
	p := nixtest.Paths(t, scratch)[0]
	copyTree(t, filepath.Join(scratch, p), filepath.Join(live, p))
	h, n := hashOf(t, scratch, p), narSizeOf(t, scratch, p)
	return p, fmt.Sprintf("insert into ValidPaths (path, hash, registrationTime, narSize) values ('%s', '%s', 1, %d)", p, h, n)
}

// TestMergeWAL merges into a live db whose newest rows are only in the
// WAL: one written through a connection still open, one by a process
// killed before it could checkpoint. No row is lost.
func TestMergeWAL(t *testing.T) {
	ctx := context.Background()
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))
	db := dbFile(live)

	// A writer killed with its row in the WAL (-wal and -shm stay).
	killed, stmt := cachePath(t, live, "killed-writer")
	if !nixtest.Kill(t, nixtest.Command("wal", envWALDB+"="+db, envWALSQL+"="+stmt), nixtest.At("written")) {
		t.Fatal("the WAL writer was not killed")
	}
	// A writer that keeps its connection open.
	open, stmt := cachePath(t, live, "open-writer")
	conn, err := sql.Open("sqlite", "file:"+db+"?_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(db + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL content to merge with: %v", err)
	}

	rep, err := Merge(ctx, live, staged, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Added) != 3 {
		t.Errorf("added %d paths, want 3", len(rep.Added))
	}
	if _, err := os.Stat(db + "-wal"); err != nil {
		t.Errorf("the -wal file that was there is gone: %v", err)
	}
	conn.Close()
	got := nixtest.Verify(t, live)
	want := nixtest.Union(releaseA.StorePaths(), releaseB.StorePaths(), []string{killed, open})
	if !slices.Equal(want, got) {
		t.Errorf("valid paths: %d, want %d (old, new and both WAL rows)", len(got), len(want))
	}
}

// TestMergeKeepsDBModes leaves owner and mode of the db as they were, and
// the -shm file SQLite creates gets the db's (an empty, persistent -wal
// is there, as Nix may leave it).
func TestMergeKeepsDBModes(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))
	db := dbFile(live)
	os.Remove(db + "-shm")
	if err := os.WriteFile(db+"-wal", nil, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{db, db + "-wal"} {
		if err := os.Chown(name, 30001, 30000); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Merge(context.Background(), live, staged, MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || st.Uid != 30001 || st.Gid != 30000 {
			t.Errorf("%s: mode %v owner %d:%d, want -rw-r----- 30001:30000", name, fi.Mode(), st.Uid, st.Gid)
		}
	}
	nixtest.Verify(t, live)
}

// TestLiveReaderSeesConcurrentWrites: the live db is read while jobs run.
// A row a Nix process commits after the reader opened (the db had no -wal
// then) is seen by the reader's next query: the live db is never read as
// immutable.
func TestLiveReaderSeesConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	live := template(t, "go-a", goStore(releaseA))
	db := dbFile(live)
	for _, f := range []string{db + "-wal", db + "-shm"} {
		if ok, err := exists(f); err != nil || ok {
			t.Fatalf("%s exists (%v): the test needs a db without a WAL", f, err)
		}
	}
	p, stmt := cachePath(t, live, "job-result")
	sk, err := NewSkipper(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	held, err := HeldImages(ctx, live, nil)
	if err != nil || len(held) != 0 {
		t.Fatalf("HeldImages of nothing: %v, %v", held, err)
	}

	// A job's Nix registers p and keeps its connection open.
	w, err := sql.Open("sqlite", "file:"+db+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	if !sk.Skip(v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, []string{p}) {
		t.Errorf("the live reader does not see %s, committed after it opened", p)
	}
}
