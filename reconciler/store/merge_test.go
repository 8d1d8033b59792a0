package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestMergeKeepsCache merges release B into a live store of release A
// that jobs have added to: old paths, cache paths and B's paths all end up
// valid, B's references are the image's, and rows already valid are kept.
func TestMergeKeepsCache(t *testing.T) {
	ctx := context.Background()
	m := abMerge(t)
	live, staged := m.live, m.staged
	cache := []string{m.addToLive(t, "hello"), m.addToLive(t, "cuda-stub")}
	shared := releaseA.StorePaths()[0]
	idBefore, regBefore := dbRow(t, live, shared)

	var progress bytes.Buffer
	rep, err := Merge(ctx, live, staged, MergeOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	got := nixtest.Verify(t, live)
	if diff := cmp.Diff(nixtest.Union(m.old, m.image), got); diff != "" {
		t.Errorf("valid paths after merge (-want +got):\n%s", diff)
	}
	for _, p := range cache {
		if _, err := os.Stat(filepath.Join(live, p)); err != nil {
			t.Errorf("cache path %s lost: %v", p, err)
		}
	}
	if diff := cmp.Diff(m.wantRefs, nixtest.RefsOf(t, live, m.image)); diff != "" {
		t.Errorf("references of image paths (-image +live):\n%s", diff)
	}
	wantAdded := m.adding()
	if diff := cmp.Diff(wantAdded, rep.Added); diff != "" {
		t.Errorf("report.Added (-want +got):\n%s", diff)
	}
	if len(wantAdded) != 3 || rep.AlreadyValid != 17 || rep.AddedBytes <= 0 || len(rep.HashConflicts) != 0 {
		t.Errorf("report: %d added (%d bytes), %d already valid, %d conflicts; want 3 added, 17 valid, none", len(rep.Added), rep.AddedBytes, rep.AlreadyValid, len(rep.HashConflicts))
	}
	if id, reg := dbRow(t, live, shared); id != idBefore || reg != regBefore {
		t.Errorf("row of already-valid %s changed: id %d→%d, registrationTime %d→%d", shared, idBefore, id, regBefore, reg)
	}
	if paths, bytes := nixTotals(t, live); rep.PathsTotal != paths || rep.BytesTotal != bytes {
		t.Errorf("report totals: %d paths, %d bytes; Nix says %d paths, %d bytes", rep.PathsTotal, rep.BytesTotal, paths, bytes)
	}
	if !strings.Contains(progress.String(), "added 3 paths") {
		t.Errorf("progress does not say what was added:\n%s", progress.String())
	}

	// The same merge again adds nothing.
	rep, err = Merge(ctx, live, staged, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Added) != 0 || rep.AlreadyValid != len(m.image) {
		t.Errorf("second merge: %d added, %d already valid; want 0 and %d", len(rep.Added), rep.AlreadyValid, len(m.image))
	}
	nixtest.Verify(t, live)
}

// TestMergeDryRun reports what a merge would add and changes nothing: no
// lock file, no row. It reads the live db as any WAL reader does (jobs may
// write it meanwhile), which may leave SQLite's -shm and an empty -wal.
func TestMergeDryRun(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))
	if err := os.Remove(filepath.Join(dbPath(live), "big-lock")); err != nil {
		t.Fatal(err)
	}
	before, stagedBefore := nixtest.Snapshot(t, live), nixtest.Snapshot(t, staged)
	rep, err := Merge(context.Background(), live, staged, MergeOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	after := nixtest.Snapshot(t, live)
	for _, f := range []string{"nix/var/nix/db/db.sqlite-shm", "nix/var/nix/db/db.sqlite-wal"} {
		if _, ok := before[f]; !ok {
			delete(after, f)
		}
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("%s changed (-before +after):\n%s", live, diff)
	}
	if fi, err := os.Stat(dbFile(live) + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("the dry run wrote %d bytes to the -wal", fi.Size())
	}
	nixtest.Unchanged(t, staged, stagedBefore, staged)
	want := nixtest.Minus(releaseB.StorePaths(), releaseA.StorePaths())
	if diff := cmp.Diff(want, rep.Added); diff != "" || !rep.DryRun || rep.AddedBytes <= 0 {
		t.Errorf("dry run report: dry %v, %d bytes, added (-want +got):\n%s", rep.DryRun, rep.AddedBytes, diff)
	}
	// The real merge adds exactly what the dry run said.
	real, err := Merge(context.Background(), live, staged, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep.Added, real.Added); diff != "" || real.AddedBytes != rep.AddedBytes {
		t.Errorf("merge added other paths than the dry run said (-dry +real):\n%s", diff)
	}
}

// TestMergeRefusesSchema refuses differing, corrupt or unknown schema
// versions and changes nothing.
func TestMergeRefusesSchema(t *testing.T) {
	tests := []struct {
		name         string
		live, staged string // db/schema contents; "" keeps "10"
		want         []string
	}{
		{"newer image", "", "11", []string{"live store has version 10", "image version 11", "--replace"}},
		{"older live", "9", "", []string{"version 9", "image version 10", "--replace"}},
		{"newline is corrupt", "10\n", "", []string{"corrupt", `"10\n"`}},
		{"image corrupt", "", "ten", []string{"image store", "corrupt"}},
		{"both unknown", "11", "11", []string{"version 11 is not supported", "--replace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := template(t, "go-a", goStore(releaseA))
			staged := template(t, "go-b", goStore(releaseB))
			for root, v := range map[string]string{live: tt.live, staged: tt.staged} {
				if v == "" {
					continue
				}
				if err := os.WriteFile(filepath.Join(dbPath(root), "schema"), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := nixtest.Snapshot(t, live)
			_, err := Merge(context.Background(), live, staged, MergeOptions{})
			if err == nil || !errors.Is(err, ErrSchema) {
				t.Fatalf("merge: %v, want a schema error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			nixtest.Unchanged(t, live, before, live)
		})
	}
}

// TestMergeHashConflict keeps the live row and files of a path whose hash
// differs in the image, and reports it.
func TestMergeHashConflict(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))
	shared := releaseA.StorePaths()[2]
	const fake = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	nixtest.ExecSQL(t, staged, `update ValidPaths set hash = ? where path = ?`, fake, shared)
	rep, err := Merge(context.Background(), live, staged, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live0, _ := dbRow(t, live, shared)
	want := []Conflict{{Path: shared, LiveHash: hashOf(t, live, shared), ImageHash: fake}}
	if diff := cmp.Diff(want, rep.HashConflicts); diff != "" {
		t.Errorf("conflicts (-want +got):\n%s", diff)
	}
	if live0 == 0 {
		t.Errorf("row of %s lost", shared)
	}
	nixtest.Verify(t, live)
}

// TestMergeRefusesBrokenImage stops before any change when the image store
// is inconsistent.
func TestMergeRefusesBrokenImage(t *testing.T) {
	newPath := nixtest.Minus(releaseB.StorePaths(), releaseA.StorePaths())[0]
	tests := []struct {
		name    string
		corrupt func(t *testing.T, staged string)
		want    string
	}{
		{"dangling reference", func(t *testing.T, staged string) {
			nixtest.ExecSQL(t, staged, `pragma foreign_keys = off; insert into Refs (referrer, reference) values ((select id from ValidPaths where path = '`+newPath+`'), 9999)`)
		}, "inconsistent"},
		{"missing files", func(t *testing.T, staged string) {
			if err := removeTree(filepath.Join(staged, newPath)); err != nil {
				t.Fatal(err)
			}
		}, "stage the image again: " + newPath},
		// A merge checks the rows itself, whoever staged the store.
		{"deriver outside the store", func(t *testing.T, staged string) {
			nixtest.ExecSQL(t, staged, `update ValidPaths set deriver = '/tmp/evil.drv' where path = ?`, newPath)
		}, "column deriver: path \"/tmp/evil.drv\" is not in the Nix store"},
		{"not a store path", func(t *testing.T, staged string) {
			nixtest.ExecSQL(t, staged, `update ValidPaths set path = '/nix/store/../../etc/passwd-aaaaaaaaaaaaaaaaaaaaaaaaaaa' where path = ?`, newPath)
		}, "column path: store path \"/nix/store/../../etc/passwd-aaaaaaaaaaaaaaaaaaaaaaaaaaa\" contains illegal base-32 character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := template(t, "go-a", goStore(releaseA))
			staged := template(t, "go-b", goStore(releaseB))
			tt.corrupt(t, staged)
			before := nixtest.Snapshot(t, live)
			_, err := Merge(context.Background(), live, staged, MergeOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("merge: %v, want an error about %q", err, tt.want)
			}
			// The lock file is the one thing a failed merge may touch.
			nixtest.Unchanged(t, live, before, live)
		})
	}
}

// TestMergeRefusesOtherFilesystem refuses a staged store that paths cannot
// be renamed from (here on /dev/shm), before any change.
func TestMergeRefusesOtherFilesystem(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	shm, err := os.MkdirTemp("/dev/shm", "staged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(shm) })
	staged := filepath.Join(shm, "root")
	copyTree(t, template(t, "go-b", goStore(releaseB)), staged)
	before := nixtest.Snapshot(t, live)
	_, err = Merge(context.Background(), live, staged, MergeOptions{})
	if err == nil || !strings.Contains(err.Error(), "another filesystem") {
		t.Fatalf("merge from another filesystem: %v", err)
	}
	nixtest.Unchanged(t, live, before, live)
}

// TestMergeCopiesRows registers a new path with every column of the
// image's row and its derivation outputs, with ids re-mapped.
func TestMergeCopiesRows(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))
	added := nixtest.Minus(releaseB.StorePaths(), releaseA.StorePaths())
	drv, out := added[0], added[1]
	nixtest.ExecSQL(t, staged, `update ValidPaths set deriver = '/nix/store/00000000000000000000000000000000-x.drv', ultimate = 1,
		sigs = 'cache.example.org-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==', ca = 'fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', registrationTime = 1700000000 where path = ?`, drv)
	nixtest.ExecSQL(t, staged, `insert into DerivationOutputs (drv, id, path) values ((select id from ValidPaths where path = ?), 'out', ?)`, drv, out)
	// Spread the live ids away from the image's so that copied ids would show.
	nixtest.ExecSQL(t, live, `insert into ValidPaths (id, path, hash, registrationTime) values (5000, '/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-gone', 'sha256:00', 1); delete from ValidPaths where id = 5000`)
	if _, err := Merge(context.Background(), live, staged, MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	want, got := dbRows(t, staged, drv), dbRows(t, live, drv)
	if diff := cmp.Diff(want[1:], got[1:]); diff != "" {
		t.Errorf("row of %s (-image +live):\n%s", drv, diff)
	}
	if got[0] == want[0] {
		t.Errorf("the image's id %s was copied", got[0])
	}
	if outs := derivationOutputs(t, live); !cmp.Equal(outs, []string{drv + " out " + out}) {
		t.Errorf("derivation outputs %v", outs)
	}
}

// TestMergeFailedRegistration moves the renamed paths back when the
// registration fails: live and staged stores are as they were, and the
// merge runs once the cause is gone.
func TestMergeFailedRegistration(t *testing.T) {
	live := template(t, "go-a", goStore(releaseA))
	staged := template(t, "go-b", goStore(releaseB))
	nixtest.ExecSQL(t, live, `create trigger refuse before insert on Refs begin select raise(abort, 'disk full'); end`)
	before, stagedBefore := nixtest.Snapshot(t, live), nixtest.Snapshot(t, staged)
	_, err := Merge(context.Background(), live, staged, MergeOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("merge with a failing registration: %v", err)
	}
	nixtest.Unchanged(t, live, before, live)
	nixtest.Unchanged(t, staged, stagedBefore, staged)
	nixtest.ExecSQL(t, live, `drop trigger refuse`)
	rep, err := Merge(context.Background(), live, staged, MergeOptions{})
	if err != nil || len(rep.Added) != 3 {
		t.Fatalf("merge after the failure: %v, %d added", err, len(rep.Added))
	}
	nixtest.Verify(t, live)
}

// nixTotals counts root's valid paths and sums their NAR sizes, as Nix
// reports them.
func nixTotals(t testing.TB, root string) (int, int64) {
	t.Helper()
	out := nixtest.Nix(t, nil, "nix", "path-info", "--store", root, "--json", "--all")
	var infos []struct {
		NarSize int64 `json:"narSize"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("parsing nix path-info --json: %v", err)
	}
	var n int64
	for _, in := range infos {
		n += in.NarSize
	}
	return len(infos), n
}

// TestUnsynced: a merge syncs the files of every path it adds, unless the
// staged trees were flushed while staging; an adopted leftover was written
// by an interrupted run and is synced either way.
func TestUnsynced(t *testing.T) {
	moves := []move{{"/nix/store/a", moveRename}, {"/nix/store/b", moveReplace}, {"/nix/store/c", moveAdopt}}
	if diff := cmp.Diff([]string{"/nix/store/a", "/nix/store/b", "/nix/store/c"}, unsynced(moves, false)); diff != "" {
		t.Errorf("not flushed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/nix/store/c"}, unsynced(moves, true)); diff != "" {
		t.Errorf("flushed while staging (-want +got):\n%s", diff)
	}
	if got := unsynced(moves[:2], true); len(got) != 0 {
		t.Errorf("flushed, nothing adopted: %v", got)
	}
}
