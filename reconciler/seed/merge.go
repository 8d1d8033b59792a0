package seed

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

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
	skipper, err := store.NewSkipper(ctx, dir)
	if err != nil {
		return nil, err
	}
	pull := o.Image
	pull.StageIn = dir
	if o.DryRun {
		// A dry run changes nothing in dir, not even for a while.
		pull.StageIn = os.TempDir()
	}
	if skip {
		pull.Skip = skipper.Skip
	}
	st, err := image.Stage(ctx, ref, pull)
	skipper.Close()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := st.Close(); err != nil {
			o.Log.Warn("removing the staging dir", "dir", st.Dir, "err", err)
		}
	}()
	rep, err := store.Merge(ctx, dir, st.Dir, store.MergeOptions{
		LockTimeout: o.LockTimeout, DryRun: o.DryRun, Log: o.Log, Progress: o.Progress,
	})
	if err != nil {
		return nil, err
	}
	if !o.DryRun {
		layers := store.HistoryLayers(st.Layers, st.Config)
		if err := store.RecordLayers(dir, imageName(st), layers); err != nil {
			return nil, err
		}
	}
	return &Result{
		Ref: ref, Digest: st.Digest, Manifest: st.Manifest, Store: dir, How: Merged,
		Paths: len(rep.Added), Bytes: st.Bytes, Merge: &rep, LayersSkipped: len(skipper.Skipped()),
	}, nil
}

// imageName is the image as the layer records name it: repository@digest.
func imageName(st *image.Staged) string {
	repo := st.Ref
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + st.Digest
}
