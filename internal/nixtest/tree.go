package nixtest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Snapshot describes every entry below dir: type, mode, owner, content
// hash or link target. Two equal snapshots mean nothing below dir changed.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	Walk(t, dir, func(p, rel string, fi fs.FileInfo) error {
		sys := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), sys.Uid, sys.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " → " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[rel] = desc
		return nil
	})
	return out
}

// Walk calls fn for dir and every entry below it, with its path, its path
// relative to dir ("." for dir) and what lstat says of it; an error from
// the walk or from fn fails the test.
func Walk(t testing.TB, dir string, fn func(p, rel string, fi fs.FileInfo) error) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return fn(p, rel, fi)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Unchanged fails the test when the tree at dir differs from before (a
// Snapshot), naming what.
func Unchanged(t testing.TB, what string, before map[string]string, dir string) {
	t.Helper()
	if diff := cmp.Diff(before, Snapshot(t, dir)); diff != "" {
		t.Errorf("%s changed (-before +after):\n%s", what, diff)
	}
}

// SameTree is Unchanged for two snapshots, where reading the live db
// while jobs may write it is allowed to leave SQLite's reader files: a
// -shm and an empty -wal that were not there before are not a change.
func SameTree(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	after = maps.Clone(after)
	for name, desc := range after {
		if _, ok := before[name]; ok {
			continue
		}
		emptyWAL := strings.HasSuffix(name, "/db.sqlite-wal") && strings.HasSuffix(desc, fmt.Sprintf(" %x", sha256.Sum256(nil)))
		if strings.HasSuffix(name, "/db.sqlite-shm") || emptyWAL {
			delete(after, name)
		}
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("%s changed (-before +after):\n%s", what, diff)
	}
}

// Union returns the sorted union of path sets.
func Union(sets ...[]string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Minus returns the sorted paths of a that are not in b (never nil).
func Minus(a, b []string) []string {
	out := []string{}
	for _, p := range a {
		if !slices.Contains(b, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
