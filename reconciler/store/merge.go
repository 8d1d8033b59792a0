package store

import (
	"context"
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
	// DryRun reports what would be added and changes nothing: it takes no
	// lock, creates no file and opens the live db read-only.
	DryRun bool
	// Log receives warnings (hash conflicts) and steps; nil discards.
	Log *slog.Logger
	// Progress receives one human-readable line per step; nil discards.
	Progress io.Writer
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
// completes the merge, with the same or a freshly staged dir.
func Merge(ctx context.Context, liveDir, stagedDir string, opts MergeOptions) (MergeReport, error) {
	start := time.Now()
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	rep := MergeReport{DryRun: opts.DryRun}
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

	fmt.Fprintf(progress, "waiting for the store lock (up to %v)\n", opts.LockTimeout)
	unlock, err := Lock(ctx, liveDir, opts.LockTimeout)
	if err != nil {
		return rep, err
	}
	defer unlock()
	rep.LockWait = time.Since(start)
	at("locked")
	if err := emptyTrash(liveDir); err != nil {
		return rep, err
	}
	db, conn, err := openDB(ctx, liveDir, readWrite)
	if err != nil {
		return rep, fmt.Errorf("live store: %w", err)
	}
	defer db.Close()
	defer conn.Close()

	p, err := plan(ctx, conn, img)
	if err != nil {
		return rep, err
	}
	reportConflicts(log, p.conflicts)
	moves, err := prepareMoves(liveDir, stagedDir, p.add)
	if err != nil {
		return rep, err
	}

	// From here on the live store changes. Finish even when ctx is
	// cancelled: the rest is short, and an interrupted run is only
	// completed by the next one.
	ctx = context.WithoutCancel(ctx)
	fmt.Fprintf(progress, "adding %d paths (%s), %d already valid\n", len(p.add), size(p.addedBytes()), p.valid)
	// On a failure, move the paths back: the live store is then as it
	// was, but for leftovers already deleted.
	var moved []move
	undo := func(err error) (MergeReport, error) {
		for i := len(moved) - 1; i >= 0; i-- {
			if uerr := moved[i].undo(liveDir, stagedDir); uerr != nil {
				log.Warn("moving a path back to the staging dir", "path", moved[i].path, "err", uerr)
			}
		}
		return rep, err
	}
	for _, m := range moves {
		if err := m.apply(liveDir, stagedDir); err != nil {
			return undo(err)
		}
		moved = append(moved, m)
	}
	if len(p.add) > 0 {
		added := make([]string, len(p.add))
		for i, r := range p.add {
			added[i] = r.path
		}
		if err := syncPaths(liveDir, added); err != nil {
			return undo(err)
		}
		at("synced")
		if err := register(ctx, conn, img, p.add); err != nil {
			return undo(err)
		}
		at("committed")
	}
	p.fill(&rep)
	// Still under the lock: the totals are the store as the merge left it.
	// They only inform: the merge stands without them.
	if err := conn.QueryRowContext(ctx, `select count(*), coalesce(sum(narSize), 0) from ValidPaths`).Scan(&rep.PathsTotal, &rep.BytesTotal); err != nil {
		log.Warn("counting the live store's paths", "err", err)
	}
	for _, m := range moves {
		switch m.kind {
		case moveReplace:
			rep.Replaced = append(rep.Replaced, m.path)
		case moveAdopt:
			rep.Adopted = append(rep.Adopted, m.path)
		}
	}
	rep.Duration = time.Since(start)
	log.Debug("merged image store", "added", len(rep.Added), "bytes", rep.AddedBytes, "already_valid", rep.AlreadyValid,
		"conflicts", len(rep.HashConflicts), "replaced", len(rep.Replaced), "adopted", len(rep.Adopted), "duration", rep.Duration)
	fmt.Fprintf(progress, "added %d paths (%s) in %v\n", len(rep.Added), size(rep.AddedBytes), rep.Duration.Round(time.Millisecond))
	return rep, nil
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
