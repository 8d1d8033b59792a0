package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// storeStager adapts the seed package's two-phase merge to the
// reconciler: Stage while the runner is busy, Commit while it is stopped.
type storeStager struct {
	live string // absolute live store dir
	opts seed.Options
}

var (
	_ reconciler.Stager        = (*storeStager)(nil)
	_ reconciler.Holder        = (*storeStager)(nil)
	_ reconciler.Sweeper       = (*storeStager)(nil)
	_ reconciler.Planner       = (*storeStaged)(nil)
	_ reconciler.LiveCommitter = (*storeStaged)(nil)
)

// Sweep removes the staging dirs in the live store dir that no run holds.
func (s *storeStager) Sweep(ctx context.Context) error {
	return seed.SweepStaging(ctx, s.live, s.opts.Log)
}

// Held reports which digests the live store still holds entirely, by the
// layer records and the live db (no lock: jobs may run).
func (s *storeStager) Held(ctx context.Context, digests []string) (map[string]bool, error) {
	return store.HeldImages(ctx, s.live, digests)
}

// Stage pulls, extracts and verifies ref's store into a staging dir inside
// the live store dir. Layers whose store paths the live store holds
// already are not pulled.
func (s *storeStager) Stage(ctx context.Context, ref string) (reconciler.Staged, error) {
	if _, err := os.Stat(filepath.Join(s.live, "nix/var/nix/db/db.sqlite")); err != nil {
		return nil, reconciler.Terminal(fmt.Errorf("%s holds no Nix store to merge into; install one first with `hydrafy seed IMAGE --store %s`", s.live, s.live))
	}
	p, err := seed.StageMerge(ctx, ref, s.live, s.opts)
	if err != nil {
		if errors.Is(err, image.ErrNotNix) || errors.Is(err, store.ErrBadRow) {
			err = reconciler.Terminal(err)
		}
		return nil, err
	}
	return &storeStaged{p: p}, nil
}

type storeStaged struct{ p *seed.Pending }

// Digest returns the index digest the store was staged from.
func (g *storeStaged) Digest() string { return g.p.Digest() }

// Commit merges the staged store into the live one under the big-lock. A
// path of a skipped layer collected as garbage meanwhile fails the commit
// before any change (store.ErrStagedMissing); that is transient: the next
// pass stages the layer again.
func (g *storeStaged) Commit(ctx context.Context) (reconciler.CommitReport, error) {
	return commitReport(g.p.Merge(ctx))
}

// CommitLive merges the staged store while jobs run, as Nix adds paths:
// the big-lock shared, each path under its Nix path lock. A merge only
// adds paths, so it never needs the runner stopped.
func (g *storeStaged) CommitLive(ctx context.Context) (reconciler.CommitReport, error) {
	return commitReport(g.p.MergeLive(ctx))
}

func commitReport(res *seed.Result, err error) (reconciler.CommitReport, error) {
	if err != nil {
		return reconciler.CommitReport{}, terminalMerge(err)
	}
	m := res.Merge
	return reconciler.CommitReport{
		PathsAdded: len(m.Added), BytesAdded: m.AddedBytes,
		PathsTotal: m.PathsTotal, BytesTotal: m.BytesTotal,
		PathsRestored: len(m.Restored), PathsRaced: len(m.Raced),
	}, nil
}

// PathsToAdd counts the paths a commit would add, with a dry-run merge
// (no lock, read-only live db): an image whose store the live store holds
// already needs no drain. Such an image is recorded as held in the layer
// records at once, as a commit would record it.
func (g *storeStaged) PathsToAdd(ctx context.Context) (int, error) {
	rep, err := g.p.Plan(ctx)
	if err != nil {
		return 0, terminalMerge(err)
	}
	if len(rep.Added) == 0 {
		if err := g.p.Record(); err != nil {
			return 0, fmt.Errorf("recording a held image: %w", err)
		}
	}
	return len(rep.Added), nil
}

// terminalMerge marks the merge errors that staging again cannot fix: a
// schema that differs from the live store's, an image whose closure the
// live store cannot complete.
func terminalMerge(err error) error {
	if errors.Is(err, store.ErrSchema) || errors.Is(err, store.ErrClosure) || errors.Is(err, store.ErrBadRow) {
		return reconciler.Terminal(err)
	}
	return err
}

// Close removes the staging dir.
func (g *storeStaged) Close() error { return g.p.Close() }

// newStagerFor is newStager's body: the live store dir and seed options.
func newStagerFor(live string, o seed.Options, log *slog.Logger) *storeStager {
	o.Log = log
	return &storeStager{live: live, opts: o}
}
