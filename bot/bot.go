// Package bot runs the bot's pass: resolve the tracked tag (watch), and
// when its digest is ready, keep one merge request per watched project
// (propose). Both remember what they observed in the state dir, so a pass
// can run from the CLI (`hydrafy check`) and from the daemon's schedule alike.
package bot

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/bot/watch"
	"gitlab.com/hydrafy/hydrafy/config"
)

// Bot is one configured watch + propose pass.
type Bot struct {
	watcher  *watch.Watcher
	proposer *propose.Proposer
	stateDir string
	log      *slog.Logger
}

// Options adjust a Bot beyond the config: tests and the demo point the
// watcher at their own registry transport.
type Options struct {
	Watch    func(*watch.Options)
	GitLab   *gitlab.Client // nil: a client for cfg.GitLab
	StateDir string         // "": cfg.Server.StateDir
}

// New builds a Bot from the configuration.
func New(cfg config.Config, log *slog.Logger, o Options) (*Bot, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wo := watch.FromConfig(cfg.Watch)
	wo.Logger = log
	if o.Watch != nil {
		o.Watch(&wo)
	}
	w, err := watch.New(wo)
	if err != nil {
		return nil, err
	}
	gl := o.GitLab
	if gl == nil {
		if gl, err = propose.NewClient(cfg.GitLab.URL, cfg.GitLab.Token); err != nil {
			return nil, err
		}
	}
	dir := o.StateDir
	if dir == "" {
		dir = cfg.Server.StateDir
	}
	return &Bot{
		watcher:  w,
		proposer: propose.New(gl, propose.OptionsFrom(cfg), log),
		stateDir: dir,
		log:      log,
	}, nil
}

// Report is what one pass saw and did.
type Report struct {
	Watch watch.Result
	// Propose is nil when the digest was not ready or proposing was off.
	// In a preview, it is what would be proposed.
	Propose *propose.Report
}

// PassOptions choose how much of the pass runs.
type PassOptions struct {
	// DryRun resolves the tag and reports; it writes no state and proposes nothing.
	DryRun bool
	// WatchOnly records the observation but proposes nothing.
	WatchOnly bool
	// Preview, with DryRun, also reads the projects and reports what
	// would be proposed for the digest, ready or not.
	Preview bool
	// Seeded is the digest the caller seeded into the store before this
	// pass; the merge requests say the store holds it. When the registry
	// has moved on since, the pass proposes nothing: the caller seeds the
	// newer digest first, on its next pass.
	Seeded string
}

// Pass runs the watcher once and, when the digest is ready, the proposer.
// The error is for the watch (registry) or the state files; per-project
// propose failures are in the report (Report.Propose.Failed).
func (b *Bot) Pass(ctx context.Context, now time.Time, po PassOptions) (Report, error) {
	var rep Report
	if !po.DryRun {
		unlock, err := lockState(ctx, b.stateDir)
		if err != nil {
			return rep, err
		}
		defer unlock()
	}
	prev, err := readWatchState(b.watchPath())
	if err != nil {
		return rep, err
	}
	res, next, err := b.watcher.Check(ctx, prev, now)
	if err != nil {
		return rep, err
	}
	rep.Watch = res
	if po.DryRun {
		if po.Preview {
			prep, err := b.proposer.Preview(ctx, target(res, false))
			if err != nil {
				return rep, fmt.Errorf("previewing %s: %w", res.Reference(), err)
			}
			rep.Propose = &prep
		}
		return rep, nil
	}
	if err := writeJSON(b.watchPath(), next); err != nil {
		return rep, err
	}
	if !res.Ready || po.WatchOnly {
		return rep, nil
	}
	if po.Seeded != "" && po.Seeded != res.Digest {
		return rep, nil
	}
	pst, err := readProposeState(b.proposePath())
	if err != nil {
		return rep, err
	}
	prep, pst, err := b.proposer.Pass(ctx, target(res, po.Seeded != ""), pst)
	if err != nil {
		return rep, fmt.Errorf("proposing %s: %w", res.Reference(), err)
	}
	rep.Propose = &prep
	if err := writeJSON(b.proposePath(), pst); err != nil {
		return rep, err
	}
	return rep, nil
}

// target is what the proposer pins for a watch result.
func target(res watch.Result, seeded bool) propose.Target {
	return propose.Target{
		Image: res.Image, Tag: res.Tag, Digest: res.Digest, Platforms: res.Platforms,
		Created: res.Created, NixVersion: res.NixVersion, VersionTag: res.VersionTag, Seeded: seeded,
	}
}

// watchPath is where the watcher's observations are kept.
func (b *Bot) watchPath() string { return filepath.Join(b.stateDir, "watch.json") }

func (b *Bot) proposePath() string { return filepath.Join(b.stateDir, "propose.json") }
