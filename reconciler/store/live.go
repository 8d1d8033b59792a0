package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// restoreRounds bounds how often a live merge puts back paths that
// vanished after it renamed them in.
const restoreRounds = 3

// reserveDir, inside a staged root, holds hard-linked copies of the paths
// a live merge renames into the live store.
const reserveDir = ".hydrafy-reserve"

// mergeLive adds the image's missing paths while Nix processes use the
// store, following the protocol of Nix's own LocalStore::addToStore at
// batch granularity:
//
//  1. db/big-lock is held shared for the whole merge, as every Nix process
//     holds it; only a process holding it exclusively (a drained merge, a
//     schema migration) makes the merge wait;
//  2. the image was staged on the same filesystem, outside nix/store
//     (Nix's garbage collector deletes unknown names there);
//  3. paths already valid are dropped; the rest are locked in sorted order
//     with Nix's path locks (lockStorePaths);
//  4. under the locks each path's validity is read again from the db, not
//     from a cache: a path a Nix process made valid meanwhile stays as that
//     process wrote it; for the others a leftover (a crashed writer's) is
//     deleted and the staged path renamed in;
//  5. one short BEGIN IMMEDIATE transaction, with a busy timeout and a
//     retry on SQLITE_BUSY, registers the batch (the same registration as a
//     drained merge);
//  6. the path locks are released as Nix releases them (unlink, "d",
//     close), then every added path is checked to be on disk, and one a
//     job's garbage collection deleted is put back from a hard-linked copy.
//
// Nix 2.8.1 sources followed (src/libstore/): addToStore, local-store.cc
// 1246-1324; PathLocks::lockPaths (sorted, stale files reopened) and
// deleteLockFile (unlink, then "d"), pathlocks.cc 29-39, 92-176;
// registerValidPaths, local-store.cc 1151-1207; the lifetime shared
// big-lock, local-store.cc 249-256; retrySQLite, sqlite.cc 209-229.
//
// Killed at any point, the store is left as after a crashed Nix writer:
// valid paths complete, at worst unregistered leftovers and lock files of
// size 0, which the next writer of the path (Nix or a merge) deletes.
func (m *merger) mergeLive(ctx context.Context) (MergeReport, error) {
	rep := MergeReport{Live: true}
	fmt.Fprintf(m.progress, "opening the store as Nix does (shared lock, up to %v)\n", m.opts.LockTimeout)
	p, release, err := m.begin(ctx, &rep, LockShared, "shared")
	if err != nil {
		return rep, err
	}
	defer release()
	paths := make([]string, len(p.add))
	for i, r := range p.add {
		paths[i] = r.path
	}
	fmt.Fprintf(m.progress, "locking %d paths to add, %d already valid\n", len(paths), p.valid)
	locks, err := lockStorePaths(m.live, paths, m.log)
	if err != nil {
		return rep, err
	}
	released := false
	defer func() {
		if !released {
			if err := locks.release(); err != nil {
				m.log.Warn("releasing path locks", "err", err)
			}
		}
	}()
	at("locked")
	// Nix processes may have added some of them while this merge waited
	// for their locks: read the db again, under the locks.
	var add []row
	for _, r := range p.add {
		_, hash, ok, err := lookup(ctx, m.conn, r.path)
		if err != nil {
			return rep, fmt.Errorf("reading live db: %w", err)
		}
		if !ok {
			add = append(add, r)
			continue
		}
		p.valid++
		rep.Raced = append(rep.Raced, r.path)
		if hash != r.hash {
			c := Conflict{Path: r.path, LiveHash: hash, ImageHash: r.hash}
			p.conflicts = append(p.conflicts, c)
			reportConflicts(m.log, []Conflict{c})
		}
	}
	p.add = add
	ctx = context.WithoutCancel(ctx)
	fmt.Fprintf(m.progress, "adding %d paths (%s) while the store is in use\n", len(p.add), size(p.addedBytes()))
	moves, err := m.add(ctx, p.add, true, m.opts.Flushed)
	if err != nil {
		return rep, err
	}
	released = true
	if err := locks.release(); err != nil {
		// The paths are in and registered; a lock file left behind is
		// reused by its next writer.
		m.log.Warn("releasing path locks", "err", err)
	}
	at("released")
	if rep.Restored, err = m.restore(ctx, p.add); err != nil {
		return rep, err
	}
	m.finish(ctx, &rep, p, moves)
	return rep, nil
}

// restore checks that every added path is on disk and puts back, from the
// reserve copies, those a job's garbage collection deleted after their
// rename (it sees them unregistered and deletes them, or it invalidates
// and deletes them after the commit). Each is locked again (the old lock
// file may be gone with the path) and registered again when it was
// invalidated. It returns the paths restored.
func (m *merger) restore(ctx context.Context, added []row) ([]string, error) {
	var restored []string
	for round := 0; ; round++ {
		var gone []row
		for _, r := range added {
			ok, err := exists(filepath.Join(m.live, r.path))
			if err != nil {
				return restored, err
			}
			if !ok {
				gone = append(gone, r)
			}
		}
		if len(gone) == 0 {
			return restored, nil
		}
		if round == restoreRounds {
			return restored, fmt.Errorf("%d added paths keep vanishing from the live store (a garbage collection running in a job?), such as %s", len(gone), gone[0].path)
		}
		for _, r := range gone {
			m.log.Warn("an added path vanished from the live store (a job's garbage collection?); adding it again", "path", r.path)
		}
		rows, err := m.restoreBatch(ctx, gone)
		if err != nil {
			return restored, err
		}
		for _, r := range rows {
			restored = append(restored, r.path)
		}
		added = rows
	}
}

// restoreBatch locks gone's paths again and puts back those still missing.
func (m *merger) restoreBatch(ctx context.Context, gone []row) ([]row, error) {
	paths := make([]string, len(gone))
	for i, r := range gone {
		paths[i] = r.path
	}
	locks, err := lockStorePaths(m.live, paths, m.log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := locks.release(); err != nil {
			m.log.Warn("releasing path locks", "err", err)
		}
	}()
	var rows []row
	for _, r := range gone {
		ok, err := exists(filepath.Join(m.live, r.path))
		if err != nil {
			return nil, err
		}
		if ok {
			continue // written again meanwhile, under its lock
		}
		// Back to where the staged copy was: add renames it in from
		// there, keeping a new reserve.
		if err := os.Rename(m.reservePath(r.path), filepath.Join(m.staged, r.path)); err != nil {
			return nil, fmt.Errorf("restoring %s: %w", r.path, err)
		}
		rows = append(rows, r)
	}
	// Rows still valid are kept as they are; invalidated ones are
	// registered again.
	// The put-back trees' dirs are the reserve's, made after staging: not
	// flushed yet.
	if _, err := m.add(ctx, rows, true, false); err != nil {
		return nil, err
	}
	return rows, nil
}

func (m *merger) reservePath(path string) string {
	return filepath.Join(m.staged, reserveDir, filepath.Base(path))
}

// reserveAll reserves every move's tree, several at a time.
func (m *merger) reserveAll(moves []move) error {
	if len(moves) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(m.staged, reserveDir), 0o755); err != nil {
		return fmt.Errorf("making the reserve dir: %w", err)
	}
	g := new(errgroup.Group)
	g.SetLimit(8)
	for _, mv := range moves {
		g.Go(func() error { return m.reserve(mv) })
	}
	return g.Wait()
}

// reserve hard-links the tree mv brings into the live store into the
// staging dir: a garbage collection that deletes the live copy only
// unlinks names, and the reserve keeps the files.
func (m *merger) reserve(mv move) error {
	src := filepath.Join(m.staged, mv.path)
	if mv.kind == moveAdopt {
		src = filepath.Join(m.live, mv.path)
	}
	dst := m.reservePath(mv.path)
	if err := removeTree(dst); err != nil {
		return err
	}
	if err := linkTree(src, dst); err != nil {
		return fmt.Errorf("keeping a copy of %s: %w", mv.path, err)
	}
	return nil
}

// linkTree recreates the tree at src at dst: directories with the same
// mode and mtime, files and symlinks as hard links.
func linkTree(src, dst string) error {
	type dir struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dir
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if !d.IsDir() {
			return os.Link(p, to)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		dirs = append(dirs, dir{to, info.Mode().Perm(), info.ModTime()})
		return os.Mkdir(to, 0o755)
	})
	if err != nil {
		return err
	}
	// Deepest first: a read-only parent must be finished last.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// busyRetry bounds how long a registration is retried while SQLite
// reports the db busy (beyond the busy timeout each attempt waits).
const busyRetry = 10 * time.Minute

// registerRetry registers as register does, and runs the whole transaction
// again when SQLite reports the db busy or the snapshot stale, as Nix's
// retrySQLite does, after a random pause of up to 100 ms.
func registerRetry(ctx context.Context, conn *sql.Conn, img *imageDB, add []row) error {
	deadline := time.Now().Add(busyRetry)
	for {
		err := register(ctx, conn, img, add)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		at("busy")
		time.Sleep(time.Duration(rand.Int64N(int64(100 * time.Millisecond))))
	}
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_PROTOCOL (primary
// codes, as Nix checks them).
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}
