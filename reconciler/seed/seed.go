// Package seed implements `hydrafy seed`: it stages an image's Nix store
// and installs it at a store dir, either fresh, as a replacement of the
// store there, or merged into it.
package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// Options configure a seed.
type Options struct {
	// Store is the store dir (DIR): it gets DIR/nix/store and DIR/nix/var/nix/db.
	Store string
	// Replace swaps an existing store for exactly the image's store.
	Replace bool
	// Live merges while Nix processes (jobs) use the store, as Nix adds
	// paths: the big-lock shared, each path under Nix's path lock. It
	// needs a store dir that holds a store, and no Replace.
	Live bool
	// DryRun reports what a merge into the store at Store would add and
	// changes nothing (the image is staged in the temp dir and removed).
	// It needs a store dir that holds a store, and no Replace.
	DryRun bool
	// LockTimeout bounds the wait for the store's big-lock before a merge
	// or a replace (store.DefaultLockTimeout when zero).
	LockTimeout time.Duration
	// Progress receives the merge's step lines; nil discards them.
	Progress io.Writer
	// Image tunes the pull; its StageIn is set by Seed.
	Image image.Options
	// NoSync skips flushing the staged store to disk before it is renamed
	// into place (as tar -x would): faster, but a crash right after the
	// seed may leave files of the new store empty.
	NoSync bool
	// Log receives warnings; nil discards them.
	Log *slog.Logger
}

// How says how a seed installed the image's store.
type How string

// The ways a seed installs a store.
const (
	Fresh    How = "fresh"
	Replaced How = "replaced"
	Merged   How = "merged"
)

// Result describes a finished seed.
type Result struct {
	Ref, Digest, Manifest string
	// From is the mirror's reference the image came through; "" when it
	// came from Ref's registry.
	From    string
	Store   string
	How     How
	Paths   int
	Bytes   int64
	Elapsed time.Duration
	// Merge is the merge's report (How == Merged, or a dry run).
	Merge *store.MergeReport
	// LayersSkipped counts layers not pulled because the store held their paths.
	LayersSkipped int
	// PathsLeftValid counts store paths of pulled layers that were neither
	// written nor hashed because the store held them already.
	PathsLeftValid int
}

// Seed pulls ref's store into o.Store. A missing or store-less DIR gets
// the image's store, a DIR holding a store gets it swapped (o.Replace) or
// merged. The store appears only when complete: on any failure DIR is left
// as it was.
func Seed(ctx context.Context, ref string, o Options) (*Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	t, err := inspect(o.Store)
	if err != nil {
		return nil, err
	}
	switch {
	case o.Live && o.Replace:
		return nil, errors.New("--live merges into the store while it is in use; --replace swaps the whole store and needs every Nix process gone: use one or the other")
	case o.Live && !t.holdsStore:
		return nil, fmt.Errorf("--live merges into a store, and %s holds none: seed it once without --live", t.dir)
	case o.DryRun && o.Replace:
		return nil, errors.New("--dry-run shows what a merge would add; it does not go with --replace")
	case o.DryRun && !t.holdsStore:
		return nil, fmt.Errorf("--dry-run shows what a merge would add, and %s holds no store to merge into", t.dir)
	case t.holdsStore && !o.Replace:
		return merge(ctx, ref, t.dir, o)
	}
	// The staging area sits in DIR, or in its parent when DIR is missing
	// (the same filesystem either way); a run killed meanwhile leaves it
	// unlocked, and the next run into the same place deletes it.
	area, err := newStagingArea(ctx, t.stageIn, o.Log)
	if err != nil {
		return nil, err
	}
	defer area.Close()
	pull := o.Image
	if pull.Log == nil {
		pull.Log = o.Log
	}
	pull.StageIn = area.dir
	pull.Writeback = !o.NoSync // install flushes the staged store
	st, err := image.Stage(ctx, ref, pull)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := st.Close(); err != nil {
			o.Log.Warn("removing the staging dir", "dir", st.Dir, "err", err)
		}
	}()
	how := Fresh
	if t.holdsStore {
		how = Replaced
		// No Nix process may have the old store open while it is swapped.
		unlock, err := store.Lock(ctx, t.dir, o.LockTimeout)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if err := install(ctx, st, t, !o.NoSync); err != nil {
		return nil, err
	}
	// The store is in place: the layer records only spare later downloads,
	// so failing to write them is a warning, not a failed seed.
	if err := store.ResetLayers(t.dir); err != nil {
		o.Log.Warn("resetting the layer records", "err", err)
	} else if err := store.RecordImage(t.dir, imageName(st), heldLayers(st, o.Log), st.Paths); err != nil {
		o.Log.Warn("recording the seeded layers", "err", err)
	}
	if _, err := store.WriteInstalledRoots(ctx, t.dir); err != nil {
		o.Log.Warn("writing the GC roots", "err", err)
	}
	return &Result{
		Ref: ref, Digest: st.Digest, Manifest: st.Manifest, From: st.From, Store: t.dir, How: how,
		Paths: len(st.Paths), Bytes: st.Bytes, Elapsed: time.Since(start),
	}, nil
}

// target is what Seed found at the store dir.
type target struct {
	dir        string // absolute
	exists     bool
	holdsStore bool   // DIR/nix exists
	stageIn    string // DIR, or its parent when DIR is missing: same filesystem
}

func inspect(dir string) (target, error) {
	if dir == "" {
		return target{}, errors.New("no store dir given (--store DIR)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return target{}, fmt.Errorf("resolving store dir %s: %w", dir, err)
	}
	t := target{dir: abs}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(abs)
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return target{}, fmt.Errorf("store dir %s: its parent %s is not a directory", abs, parent)
		}
		t.stageIn = parent
		return t, nil
	case err != nil:
		return target{}, fmt.Errorf("store dir: %w", err)
	case !fi.IsDir():
		return target{}, fmt.Errorf("store dir %s is not a directory", abs)
	}
	t.exists, t.stageIn = true, abs
	ni, err := os.Lstat(filepath.Join(abs, "nix"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return target{}, fmt.Errorf("store dir: %w", err)
	case !ni.IsDir():
		return target{}, fmt.Errorf("%s is not a directory (a symlink?); refusing to touch it", filepath.Join(abs, "nix"))
	}
	t.holdsStore = true
	return t, nil
}
