package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// storeStager stages images with package image next to the live store and
// commits them with store.Merge.
type storeStager struct {
	live        string // absolute live store dir
	pull        image.Options
	lockTimeout time.Duration
	log         *slog.Logger
}

var (
	_ reconciler.Stager  = (*storeStager)(nil)
	_ reconciler.Planner = (*storeStaged)(nil)
)

// Stage pulls, extracts and verifies ref's store into a staging dir inside
// the live store dir (same filesystem: the commit renames paths in).
// Layers whose store paths the live store holds already are not pulled.
func (s *storeStager) Stage(ctx context.Context, ref string) (reconciler.Staged, error) {
	if _, err := os.Stat(filepath.Join(s.live, "nix/var/nix/db/db.sqlite")); err != nil {
		return nil, reconciler.Terminal(fmt.Errorf("%s holds no Nix store to merge into; install one first with `hydrafy seed IMAGE --store %s`", s.live, s.live))
	}
	skipper, err := store.NewSkipper(ctx, s.live)
	if err != nil {
		return nil, err
	}
	opts := s.pull
	opts.StageIn = s.live
	opts.Skip = skipper.Skip
	st, err := image.Stage(ctx, ref, opts)
	skipper.Close()
	if err != nil {
		if errors.Is(err, image.ErrNotNix) {
			err = reconciler.Terminal(err)
		}
		return nil, err
	}
	return &storeStaged{s: s, st: st, repo: repository(ref)}, nil
}

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

type storeStaged struct {
	s    *storeStager
	st   *image.Staged
	repo string
}

// Digest returns the index digest the store was staged from.
func (g *storeStaged) Digest() string { return g.st.Digest }

// Commit merges the staged store into the live one under the big-lock and
// records the image's layers, so that later stages skip them. A path of a
// skipped layer collected as garbage meanwhile fails the commit before any
// change (store.ErrStagedMissing); that is transient: the next pass stages
// the layer again.
func (g *storeStaged) Commit(ctx context.Context) (reconciler.CommitReport, error) {
	rep, err := store.Merge(ctx, g.s.live, g.st.Dir, store.MergeOptions{LockTimeout: g.s.lockTimeout, Log: g.s.log})
	if err != nil {
		if errors.Is(err, store.ErrSchema) {
			err = reconciler.Terminal(err)
		}
		return reconciler.CommitReport{}, err
	}
	layers := store.HistoryLayers(g.st.Layers, g.st.Config)
	if err := store.RecordLayers(g.s.live, g.repo+"@"+g.st.Digest, layers); err != nil {
		g.s.log.Warn("recording merged layers", "err", err)
	}
	return reconciler.CommitReport{PathsAdded: len(rep.Added), BytesAdded: rep.AddedBytes}, nil
}

// PathsToAdd counts the paths a commit would add, with a dry-run merge
// (no lock, read-only live db): an image whose store the live store holds
// already needs no drain.
func (g *storeStaged) PathsToAdd(ctx context.Context) (int, error) {
	rep, err := store.Merge(ctx, g.s.live, g.st.Dir, store.MergeOptions{DryRun: true, Log: g.s.log})
	if err != nil {
		return 0, err
	}
	return len(rep.Added), nil
}

// Close removes the staging dir.
func (g *storeStaged) Close() error { return g.st.Close() }
