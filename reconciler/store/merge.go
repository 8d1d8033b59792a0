package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"
)

// DefaultLockTimeout is how long Merge waits for the big-lock by default.
const DefaultLockTimeout = 10 * time.Minute

// MergeOptions tune Merge. The zero value is usable.
type MergeOptions struct {
	// LockTimeout bounds the wait for the exclusive big-lock
	// (DefaultLockTimeout when zero).
	LockTimeout time.Duration
	// Live merges while Nix processes use the store, as Nix itself adds
	// paths: the big-lock shared, each path under its Nix path lock (see
	// mergeLive). Without it the merge takes the big-lock exclusively.
	Live bool
	// DryRun reports what would be added and changes nothing: it takes no
	// lock, creates no file and opens the live db read-only.
	DryRun bool
	// Log receives warnings (hash conflicts) and steps; nil discards.
	Log *slog.Logger
	// Progress receives one human-readable line per step; nil discards.
	Progress io.Writer
	// Flushed says the staged trees are on disk already (the caller
	// flushed them while staging, before any lock was taken): the merge
	// then syncs only what it changes itself, the live store dir and the
	// leftovers it adopts, and no longer the files of every path it adds.
	Flushed bool
}

// Conflict is a path valid in both stores whose NAR hashes differ. The
// live row (and the live files) are kept.
type Conflict struct {
	Path      string
	LiveHash  string
	ImageHash string
}

// MergeReport says what a merge did (or, for a dry run, would do).
type MergeReport struct {
	// Added lists the paths registered in the live store, sorted.
	Added []string
	// AddedBytes is the NAR size of the added paths.
	AddedBytes int64
	// AlreadyValid counts image paths the live store already held.
	AlreadyValid int
	// HashConflicts lists already-valid paths whose hashes differ.
	HashConflicts []Conflict
	// Replaced lists unregistered leftovers (of an interrupted merge) that
	// were deleted and replaced by the image's copy.
	Replaced []string
	// Adopted lists unregistered leftovers of an interrupted merge whose
	// content matched the image's hash and were registered as they were.
	Adopted []string
	// Raced lists paths to add that a Nix process made valid while the
	// merge waited for their locks; they were left as that process wrote them.
	Raced []string
	// Restored lists added paths that were gone from disk after the merge
	// (a job's garbage collection) and were put back in the same merge.
	Restored []string
	// Live is set for a live merge (the big-lock held shared).
	Live bool
	// LockWait is how long the big-lock took.
	LockWait time.Duration
	// Duration is the whole merge, lock wait included.
	Duration time.Duration
	// DryRun is set when nothing was changed.
	DryRun bool
	// PathsTotal and BytesTotal are the valid paths of the live store after
	// the merge and their NAR size; zero for a dry run.
	PathsTotal int
	BytesTotal int64
}

// ErrClosure is returned by Merge when a path to add references a path that
// is neither in the image nor valid in the live store: merging it would
// leave the store incomplete, and staging again does not change that.
var ErrClosure = errors.New("closure")

// withDefaults fills in what GC and Merge take when their options leave
// it out: DefaultLockTimeout, a discarding log and progress.
func withDefaults(timeout time.Duration, log *slog.Logger, progress io.Writer) (time.Duration, *slog.Logger, io.Writer) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if progress == nil {
		progress = io.Discard
	}
	return timeout, log, progress
}

// Merge adds the store paths of the staged store at stagedDir (a root
// holding nix/store and nix/var/nix/db, verified, on the same filesystem)
// that the live store at liveDir lacks. Paths the live store already has
// stay untouched, whatever the image says. The steps: both db schemas must
// be equal; the exclusive big-lock proves no Nix process has the store
// open; the missing paths are renamed into the live store; then one
// BEGIN IMMEDIATE transaction registers them (ValidPaths rows with ids
// re-mapped by path, their Refs and DerivationOutputs). Every check runs
// before the first change. Killed at any moment, Merge leaves a store that
// Nix verifies (at worst holding unregistered paths), and running it again
// completes the merge, with the same or a freshly staged dir. With
// opts.Live the merge runs while Nix processes use the store, holding the
// big-lock shared and each path under Nix's path lock (see mergeLive);
// both modes share the moves and the registration.
func Merge(ctx context.Context, liveDir, stagedDir string, opts MergeOptions) (MergeReport, error) {
	start := time.Now()
	var log *slog.Logger
	var progress io.Writer
	opts.LockTimeout, log, progress = withDefaults(opts.LockTimeout, opts.Log, opts.Progress)
	rep := MergeReport{DryRun: opts.DryRun, Live: opts.Live}
	for _, root := range []string{liveDir, stagedDir} {
		if _, err := os.Stat(dbFile(root)); err != nil {
			return rep, fmt.Errorf("%s holds no Nix store: %w", root, err)
		}
	}
	if err := checkSchemas(liveDir, stagedDir); err != nil {
		return rep, err
	}
	img, err := readImageDB(ctx, stagedDir)
	if err != nil {
		return rep, err
	}
	if opts.DryRun {
		p, err := planReadOnly(ctx, liveDir, img)
		if err != nil {
			return rep, err
		}
		p.fill(&rep)
		rep.Duration = time.Since(start)
		reportConflicts(log, rep.HashConflicts)
		fmt.Fprintf(progress, "would add %d paths (%s), %d already valid\n", len(rep.Added), size(rep.AddedBytes), rep.AlreadyValid)
		return rep, nil
	}

	m := &merger{live: liveDir, staged: stagedDir, img: img, opts: opts, log: log, progress: progress, start: start}
	if opts.Live {
		return m.mergeLive(ctx)
	}
	return m.mergeDrained(ctx)
}

// merger is one merge under way.
type merger struct {
	live, staged string
	img          *imageDB
	opts         MergeOptions
	log          *slog.Logger
	progress     io.Writer
	start        time.Time
	conn         *sql.Conn // the live db, read-write
}

// mergeDrained merges under the exclusive big-lock: no Nix process has the
// store open meanwhile.
func (m *merger) mergeDrained(ctx context.Context) (MergeReport, error) {
	rep := MergeReport{}
	fmt.Fprintf(m.progress, "waiting for the store lock (up to %v)\n", m.opts.LockTimeout)
	p, release, err := m.begin(ctx, &rep, Lock, "locked")
	if err != nil {
		return rep, err
	}
	defer release()
	// From here on the live store changes. Finish even when ctx is
	// cancelled: the rest is short, and an interrupted run is only
	// completed by the next one.
	ctx = context.WithoutCancel(ctx)
	fmt.Fprintf(m.progress, "adding %d paths (%s), %d already valid\n", len(p.add), size(p.addedBytes()), p.valid)
	moves, err := m.add(ctx, p.add, false, m.opts.Flushed)
	if err != nil {
		return rep, err
	}
	m.finish(ctx, &rep, p, moves)
	return rep, nil
}

// begin takes the big-lock with lock (Lock or LockShared), deletes the
// trash of an interrupted merge, opens the live db read-write and plans
// the merge. release closes the db and releases the big-lock.
func (m *merger) begin(ctx context.Context, rep *MergeReport, lock func(context.Context, string, time.Duration) (func() error, error), step string) (p *mergePlan, release func(), err error) {
	unlock, err := lock(ctx, m.live, m.opts.LockTimeout)
	if err != nil {
		return nil, nil, err
	}
	rep.LockWait = time.Since(m.start)
	at(step)
	fail := func(err error) (*mergePlan, func(), error) {
		unlock()
		return nil, nil, err
	}
	if err := emptyTrash(m.live); err != nil {
		return fail(err)
	}
	db, conn, err := openDB(ctx, m.live, readWrite)
	if err != nil {
		return fail(fmt.Errorf("live store: %w", err))
	}
	m.conn = conn
	release = func() {
		conn.Close()
		db.Close()
		unlock()
	}
	if p, err = plan(ctx, conn, m.img); err != nil {
		release()
		return nil, nil, err
	}
	reportConflicts(m.log, p.conflicts)
	return p, release, nil
}

// add moves the paths of rows into the live store and registers them in
// one transaction, the part of a merge that drained and live merges share:
// decide each path's move (prepareMoves), with reserve keep a hard-linked
// copy of it in the staging dir (to restore it should a job's garbage
// collection delete it), rename, sync, register. With onDisk the staged
// trees were flushed before: only adopted leftovers and the live store
// dir are synced. On a failure the paths are moved back: the live store
// is then as it was, but for leftovers already deleted.
func (m *merger) add(ctx context.Context, rows []row, reserve, onDisk bool) ([]move, error) {
	moves, err := prepareMoves(m.live, m.staged, rows)
	if err != nil {
		return nil, err
	}
	if reserve {
		if err := m.reserveAll(moves); err != nil {
			return nil, err
		}
		at("reserved")
	}
	var moved []move
	undo := func(err error) ([]move, error) {
		for i := len(moved) - 1; i >= 0; i-- {
			if uerr := moved[i].undo(m.live, m.staged); uerr != nil {
				m.log.Warn("moving a path back to the staging dir", "path", moved[i].path, "err", uerr)
			}
		}
		return nil, err
	}
	for _, mv := range moves {
		if err := mv.apply(m.live, m.staged); err != nil {
			return undo(err)
		}
		moved = append(moved, mv)
	}
	at("moved")
	if len(rows) == 0 {
		return moves, nil
	}
	if err := syncPaths(m.live, unsynced(moves, onDisk)); err != nil {
		return undo(err)
	}
	at("synced")
	if err := registerRetry(ctx, m.conn, m.img, rows); err != nil {
		return undo(err)
	}
	at("committed")
	return moves, nil
}

// unsynced are the paths of moves whose files must be synced before they
// are registered: all of them, or with onDisk (the staged trees were
// flushed while staging) only the adopted leftovers, which an interrupted
// earlier run wrote and nothing flushed since.
func unsynced(moves []move, onDisk bool) []string {
	var out []string
	for _, mv := range moves {
		if !onDisk || mv.kind == moveAdopt {
			out = append(out, mv.path)
		}
	}
	return out
}

// finish fills rep with what the merge did and the live store's totals.
func (m *merger) finish(ctx context.Context, rep *MergeReport, p *mergePlan, moves []move) {
	p.fill(rep)
	// The totals only inform: the merge stands without them.
	if err := m.conn.QueryRowContext(ctx, `select count(*), coalesce(sum(narSize), 0) from ValidPaths`).Scan(&rep.PathsTotal, &rep.BytesTotal); err != nil {
		m.log.Warn("counting the live store's paths", "err", err)
	}
	for _, mv := range moves {
		switch mv.kind {
		case moveReplace:
			rep.Replaced = append(rep.Replaced, mv.path)
		case moveAdopt:
			rep.Adopted = append(rep.Adopted, mv.path)
		}
	}
	rep.Duration = time.Since(m.start)
	m.log.Debug("merged image store", "live", m.opts.Live, "added", len(rep.Added), "bytes", rep.AddedBytes, "already_valid", rep.AlreadyValid,
		"conflicts", len(rep.HashConflicts), "replaced", len(rep.Replaced), "adopted", len(rep.Adopted), "restored", len(rep.Restored), "duration", rep.Duration)
	fmt.Fprintf(m.progress, "added %d paths (%s) in %v\n", len(rep.Added), size(rep.AddedBytes), rep.Duration.Round(time.Millisecond))
}

// mergePlan is what the live db says about the image's paths.
type mergePlan struct {
	add       []row // image rows the live db lacks, in path order
	valid     int
	conflicts []Conflict
}

func (p *mergePlan) addedBytes() int64 {
	var n int64
	for _, r := range p.add {
		n += r.narSize.Int64
	}
	return n
}

func (p *mergePlan) fill(rep *MergeReport) {
	rep.Added = make([]string, 0, len(p.add))
	for _, r := range p.add {
		rep.Added = append(rep.Added, r.path)
	}
	sort.Strings(rep.Added)
	rep.AddedBytes = p.addedBytes()
	rep.AlreadyValid = p.valid
	rep.HashConflicts = p.conflicts
}

// plan looks up each image path in the live db (indexed, one query per
// image path) and checks that every reference of a path to add will be
// valid: added too, or valid already.
func plan(ctx context.Context, q querier, img *imageDB) (*mergePlan, error) {
	p := &mergePlan{}
	adding := map[string]bool{}
	for _, r := range img.rows {
		_, hash, ok, err := lookup(ctx, q, r.path)
		if err != nil {
			return nil, fmt.Errorf("reading live db: %w", err)
		}
		switch {
		case !ok:
			p.add = append(p.add, r)
			adding[r.path] = true
		case hash != r.hash:
			p.valid++
			p.conflicts = append(p.conflicts, Conflict{Path: r.path, LiveHash: hash, ImageHash: r.hash})
		default:
			p.valid++
		}
	}
	for _, r := range p.add {
		for _, ref := range img.refs[r.path] {
			if adding[ref] {
				continue
			}
			_, _, ok, err := lookup(ctx, q, ref)
			if err != nil {
				return nil, fmt.Errorf("reading live db: %w", err)
			}
			if !ok {
				return nil, fmt.Errorf("%w: %s references %s, which is neither in the image nor valid in the live store", ErrClosure, r.path, ref)
			}
		}
	}
	return p, nil
}

// planReadOnly plans against the live db opened read-only (dry run).
func planReadOnly(ctx context.Context, liveDir string, img *imageDB) (*mergePlan, error) {
	db, conn, err := openDB(ctx, liveDir, readLive)
	if err != nil {
		return nil, fmt.Errorf("live store: %w", err)
	}
	defer db.Close()
	defer conn.Close()
	return plan(ctx, conn, img)
}

// reportConflicts logs each conflict once; callers that print a summary
// take them from the report.
func reportConflicts(log *slog.Logger, cs []Conflict) {
	for _, c := range cs {
		log.Warn("image path differs from the live store's, keeping the live one", "path", c.Path, "live_hash", c.LiveHash, "image_hash", c.ImageHash)
	}
}

// size formats n bytes for people.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
