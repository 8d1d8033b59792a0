package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot"
	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/server"
)

// botWatcher is the scheduled pass of `hydrafy serve`, and what `hydrafy
// check` runs: the bot's watch and, when the digest is ready, propose
// pass. A ready digest is seeded first, so that the merge requests'
// pipelines find its store.
type botWatcher struct {
	bot     *bot.Bot
	trigger func(reconciler.Reason) *reconciler.Ticket
	// seeder, when set, seeds a ready digest before it is proposed.
	seeder seeder
	// canSeed, when set, is asked before seeding; its error ends the pass
	// before anything is proposed.
	canSeed func() error
}

// seeder is the reconciler as the watch pass uses it: Seed runs the pass
// that seeds ref and returns its report.
type seeder interface {
	Seed(ctx context.Context, ref string) (reconciler.Report, error)
	IsSeeded(digest string) bool
}

// reconcilerSeeder is a seeder that waits for the reconciler's pass.
type reconcilerSeeder struct{ *reconciler.Reconciler }

func (r reconcilerSeeder) Seed(ctx context.Context, ref string) (reconciler.Report, error) {
	t, err := r.Reconciler.Seed(ref)
	if err != nil {
		return reconciler.Report{}, err
	}
	return t.Wait(ctx)
}

var _ server.Watcher = botWatcher{}

// watchPass is what one pass of botWatcher saw and did.
type watchPass struct {
	// Seed is the watch-only half that decided whether to seed; Report
	// the pass that proposed (its Watch repeats the observation).
	Seed, Report bot.Report
	// Seeding says how the digest came to be in the store: "" when no
	// seeder ran, else "held already" or "seeded by pass ID".
	Seeding string
}

// Pass runs one bot pass and reports it for /status and the metrics.
func (w botWatcher) Pass(ctx context.Context) (server.WatchResult, error) {
	p, err := w.run(ctx)
	return p.result(), err
}

// run is Pass with the bot's own reports. A digest ready to propose is
// seeded first: the merge requests' pipelines run with the new image,
// whose profile points into the shared store.
func (w botWatcher) run(ctx context.Context) (watchPass, error) {
	var p watchPass
	seeded := ""
	if w.seeder != nil {
		rep, err := w.bot.Pass(ctx, time.Now(), bot.PassOptions{WatchOnly: true})
		p.Seed, p.Report = rep, rep
		if err != nil || !rep.Watch.Ready {
			return p, err
		}
		p.Seeding = "held already"
		if !w.seeder.IsSeeded(rep.Watch.Digest) {
			if w.canSeed != nil {
				if err := w.canSeed(); err != nil {
					return p, err
				}
			}
			run, err := w.seeder.Seed(ctx, rep.Watch.Image+"@"+rep.Watch.Digest)
			if err == nil && !w.seeder.IsSeeded(rep.Watch.Digest) {
				err = fmt.Errorf("seeding %s before proposing it: %s (proposing it on a later pass)", rep.Watch.Digest, run.Error)
			}
			if err != nil {
				return p, err
			}
			p.Seeding = "seeded by pass " + run.ID
		}
		seeded = rep.Watch.Digest
	}
	// The pass proposes only the digest just seeded: when the registry
	// moved on meanwhile, the next pass seeds the newer one first.
	rep, err := w.bot.Pass(ctx, time.Now(), bot.PassOptions{Seeded: seeded})
	p.Report = rep
	if rep.Propose == nil {
		return p, err
	}
	errs := []error{err}
	var proposed []string
	for _, pr := range rep.Propose.Projects {
		if pr.Err != nil {
			errs = append(errs, fmt.Errorf("proposing in %s: %w", pr.Path, pr.Err))
		}
		if pr.Action == propose.Opened || pr.Action == propose.Updated {
			proposed = append(proposed, fmt.Sprintf("%s!%d", pr.Path, pr.MR))
		}
	}
	// Without a seeder, the proposal's pins reach the store by this pass.
	if len(proposed) > 0 && w.trigger != nil && w.seeder == nil {
		w.trigger(reconciler.Reason{Kind: reconciler.KindProposal, Detail: rep.Propose.Digest + " in " + strings.Join(proposed, ", ")})
	}
	return p, errors.Join(errs...)
}

// result is the pass as /status and the metrics show it.
func (p watchPass) result() server.WatchResult {
	out := server.WatchResult{Digest: p.Report.Watch.Digest, Changed: p.Seed.Watch.Changed || p.Report.Watch.Changed}
	if p.Report.Propose == nil {
		return out
	}
	for _, pr := range p.Report.Propose.Projects {
		mr := server.MergeRequest{Project: pr.Path, IID: int(pr.MR), URL: pr.MRURL, Action: string(pr.Action)}
		if m := pr.LastMerged; m != nil {
			mr.LastMerged = &server.MergedRequest{IID: int(m.IID), URL: m.URL, Title: m.Title, MergedAt: m.At}
		}
		out.MergeRequests = append(out.MergeRequests, mr)
	}
	return out
}
