package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// merge adds the image's store paths to the store that dir already holds.
// Layers whose store paths dir already holds are not pulled. Should one of
// those paths vanish before the merge takes the store lock (a job collected
// it as garbage), the image is staged once more with every layer.
func merge(ctx context.Context, ref, dir string, o Options) (*Result, error) {
	start := time.Now()
	res, err := stageAndMerge(ctx, ref, dir, o, true)
	if errors.Is(err, store.ErrStagedMissing) {
		o.Log.Warn("a skipped layer's store path is gone from the store; pulling every layer", "err", err)
		res, err = stageAndMerge(ctx, ref, dir, o, false)
	}
	if err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func stageAndMerge(ctx context.Context, ref, dir string, o Options, skip bool) (*Result, error) {
	p, err := stage(ctx, ref, dir, o, skip)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Merge(ctx)
}

// Pending is an image staged next to a live store, verified and ready to
// be merged in: the first half of a merge, done while the store is in use.
type Pending struct {
	dir     string
	o       Options
	st      *image.Staged
	skipped int
	area    *stagingArea // nil for a dry run
	flushed bool         // the staged paths are on disk
}

// StageMerge pulls, extracts and verifies ref's store into a staging dir
// inside dir (the same filesystem: the merge renames paths in), skipping
// layers whose store paths dir holds already. Merge it with Merge; Close
// removes what was staged.
func StageMerge(ctx context.Context, ref, dir string, o Options) (*Pending, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return stage(ctx, ref, dir, o, true)
}

func stage(ctx context.Context, ref, dir string, o Options, skip bool) (_ *Pending, err error) {
	pull := o.Image
	if pull.Log == nil {
		pull.Log = o.Log
	}
	// A dry run changes nothing in dir, not even for a while.
	pull.StageIn = os.TempDir()
	var area *stagingArea
	if !o.DryRun {
		if area, err = newStagingArea(ctx, dir, o.Log); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				area.Close()
			}
		}()
		pull.StageIn = area.dir
		pull.Writeback = true // flushStaged follows
	}
	skipper, err := store.NewSkipper(ctx, dir)
	if err != nil {
		return nil, err
	}
	if skip {
		pull.Skip, pull.Recorded, pull.Valid = skipper.Skip, skipper.Recorded, skipper.Valid
	}
	st, err := image.Stage(ctx, ref, pull)
	skipper.Close()
	if err != nil {
		return nil, err
	}
	p := &Pending{dir: dir, o: o, st: st, skipped: len(skipper.Skipped()), area: area}
	if !o.DryRun {
		// Flushed now, before any lock: the merge then syncs only the
		// dirs it changes, and a drained runner waits for less.
		if err := flushStaged(st, o.Log); err != nil {
			p.Close()
			return nil, err
		}
		p.flushed = true
	}
	return p, nil
}

// flushStaged makes the staged store paths durable, so that a merge may
// register them as soon as they are renamed in.
func flushStaged(st *image.Staged, log *slog.Logger) error {
	start := time.Now()
	trees := make([]string, len(st.Paths))
	for i, p := range st.Paths {
		trees[i] = filepath.Join(st.Dir, p)
	}
	swept, err := fsutil.FlushTrees(trees, st.Bytes)
	if err != nil {
		return fmt.Errorf("flushing the staged store: %w", err)
	}
	log.Debug("flushed the staged store", "paths", len(trees), "bytes", st.Bytes, "whole_filesystem", swept, "duration", time.Since(start))
	return nil
}

// Digest is the digest the image was staged from: the index digest when
// the reference names an index.
func (p *Pending) Digest() string { return p.st.Digest }

// Plan reports what Merge would add, changing nothing (no lock is taken).
func (p *Pending) Plan(ctx context.Context) (store.MergeReport, error) {
	return store.Merge(ctx, p.dir, p.st.Dir, store.MergeOptions{DryRun: true, Log: p.o.Log})
}

// Merge takes the store's big-lock (waiting up to Options.LockTimeout),
// adds the staged paths the store lacks and records the image's layers.
// With Options.Live the big-lock is held shared and jobs keep running (see
// MergeLive). A path of a skipped layer collected as garbage since staging
// fails it before any change, with store.ErrStagedMissing: stage again.
func (p *Pending) Merge(ctx context.Context) (*Result, error) {
	return p.merge(ctx, p.o.Live)
}

// MergeLive merges as Merge does, while Nix processes use the store: the
// big-lock shared, each path added under Nix's own path lock.
func (p *Pending) MergeLive(ctx context.Context) (*Result, error) {
	return p.merge(ctx, true)
}

func (p *Pending) merge(ctx context.Context, live bool) (*Result, error) {
	rep, err := store.Merge(ctx, p.dir, p.st.Dir, store.MergeOptions{
		LockTimeout: p.o.LockTimeout, DryRun: p.o.DryRun, Live: live, Log: p.o.Log, Progress: p.o.Progress,
		Flushed: p.flushed,
	})
	if err != nil {
		return nil, err
	}
	if !p.o.DryRun {
		// The records only spare later downloads: the merge stands without them.
		if err := p.Record(); err != nil {
			p.o.Log.Warn("recording merged layers", "err", err)
		}
		// Roots spare the new paths from a job's garbage collection; the
		// merge stands without them.
		if _, err := store.WriteRoots(ctx, p.dir); err != nil {
			p.o.Log.Warn("writing the GC roots", "err", err)
		}
	}
	return &Result{
		Ref: p.st.Ref, Digest: p.st.Digest, Manifest: p.st.Manifest, From: p.st.From, Store: p.dir, How: Merged,
		Paths: len(rep.Added), Bytes: p.st.Bytes, Merge: &rep, LayersSkipped: p.skipped,
		PathsLeftValid: p.st.AlreadyValid,
	}, nil
}

// Record records the image and its layers as held by the store, as Merge
// does after merging: for an image whose paths the store holds already
// (Plan adds none), so that store.HeldImages knows it.
func (p *Pending) Record() error {
	paths, err := store.ImagePaths(context.Background(), p.st.Dir)
	if err != nil {
		return err
	}
	return store.RecordImage(p.dir, imageName(p.st), heldLayers(p.st, p.o.Log), paths)
}

// heldLayers are the layer records of a staged image: the store paths
// each layer held as extracted. History comments only fill in for layers
// whose paths were not seen; one that differs from what its layer held is
// reported, and what the layer held is recorded.
func heldLayers(st *image.Staged, log *slog.Logger) []store.Layer {
	out := store.HistoryLayers(st.Layers, st.Config)
	for i := range out {
		if i >= len(st.Held) || st.Held[i] == nil {
			continue
		}
		held := st.Held[i]
		if i < len(st.History) && len(st.History[i]) > 0 && !sameSet(st.History[i], held) {
			log.Warn("a layer's history lists other store paths than it held; recording what it held",
				"layer", out[i].Digest, "history", st.History[i], "held", held)
		}
		out[i].Paths = held
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// Close removes the staging dir.
func (p *Pending) Close() error {
	err := p.st.Close()
	if p.area != nil {
		err = errors.Join(err, p.area.Close())
	}
	if err != nil {
		p.o.Log.Warn("removing the staging dir", "dir", p.st.Dir, "err", err)
	}
	return err
}

// imageName is the image as the layer records name it: the reference's
// repository, without tag or digest, @ the staged digest.
func imageName(st *image.Staged) string { return repository(st.Ref) + "@" + st.Digest }

// repository is ref without its tag or digest.
func repository(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}
