package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/server"
)

// watchProposer is the scheduled pass of `hydrafy serve`: one watch pass,
// then, when the digest is ready, one propose pass.
type watchProposer struct {
	cfg      config.Config
	log      *slog.Logger
	proposer *propose.Proposer
}

var _ server.Watcher = (*watchProposer)(nil)

// Pass watches the tracked tag and proposes its digest when ready.
func (w *watchProposer) Pass(ctx context.Context) (server.WatchResult, error) {
	statePath := filepath.Join(w.cfg.Server.StateDir, "watch.json")
	res, err := watchPass(ctx, w.log, w.cfg.Watch, statePath, true, time.Now())
	if err != nil {
		return server.WatchResult{}, err
	}
	out := server.WatchResult{Digest: res.Digest, Changed: res.Changed}
	if !res.Ready {
		w.log.Info("digest not proposed yet", "digest", res.Digest, "reason", res.Reason)
		return out, nil
	}
	proposePath := filepath.Join(w.cfg.Server.StateDir, "propose.json")
	b, err := os.ReadFile(proposePath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("reading proposer state: %w", err)
	}
	prev, err := propose.ParseState(b)
	if err != nil {
		return out, err
	}
	rep, next, err := w.proposer.Pass(ctx, propose.Target{
		Image: res.Image, Tag: res.Tag, Digest: res.Digest, Platforms: res.Platforms,
		Created: res.Created, NixVersion: res.NixVersion,
	}, prev)
	if err != nil {
		return out, fmt.Errorf("proposing %s: %w", res.Digest, err)
	}
	nb, err := next.Marshal()
	if err != nil {
		return out, fmt.Errorf("encoding proposer state: %w", err)
	}
	if err := writeFileAtomic(proposePath, nb); err != nil {
		return out, fmt.Errorf("writing proposer state: %w", err)
	}
	var errs []error
	for _, p := range rep.Projects {
		out.MergeRequests = append(out.MergeRequests, server.MergeRequest{
			Project: p.Path, IID: int(p.MR), URL: p.MRURL, Action: string(p.Action),
		})
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("proposing in %s: %w", p.Path, p.Err))
		}
	}
	return out, errors.Join(errs...)
}
