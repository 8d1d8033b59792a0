package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
func (s *storeStager) Stage(ctx context.Context, ref string) (reconciler.Staged, error) {
	if _, err := os.Stat(filepath.Join(s.live, "nix/var/nix/db/db.sqlite")); err != nil {
		return nil, reconciler.Terminal(fmt.Errorf("%s holds no Nix store to merge into; install one first with `hydrafy seed IMAGE --store %s`", s.live, s.live))
	}
	opts := s.pull
	opts.StageIn = s.live
	st, err := image.Stage(ctx, ref, opts)
	if err != nil {
		if errors.Is(err, image.ErrNotNix) {
			err = reconciler.Terminal(err)
		}
		return nil, err
	}
	return &storeStaged{s: s, st: st}, nil
}

type storeStaged struct {
	s  *storeStager
	st *image.Staged
}

// Digest returns the index digest the store was staged from.
func (g *storeStaged) Digest() string { return g.st.Digest }

// Commit merges the staged store into the live one under the big-lock.
func (g *storeStaged) Commit(ctx context.Context) (reconciler.CommitReport, error) {
	rep, err := store.Merge(ctx, g.s.live, g.st.Dir, store.MergeOptions{LockTimeout: g.s.lockTimeout, Log: g.s.log})
	if err != nil {
		if errors.Is(err, store.ErrSchema) {
			err = reconciler.Terminal(err)
		}
		return reconciler.CommitReport{}, err
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
