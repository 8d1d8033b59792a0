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

// botWatcher is the scheduled pass of `hydrafy serve`: the bot's watch and,
// when the digest is ready, propose pass, as `hydrafy check` runs it. A
// pass that opens or updates merge requests triggers a reconcile, so that
// the store holds the proposed digest before the merge requests' pipelines
// need it.
type botWatcher struct {
	bot     *bot.Bot
	trigger func(reconciler.Reason) *reconciler.Ticket
	// seeder, when set, seeds a ready digest before it is proposed.
	seeder seeder
}

// seeder is the reconciler as the watch pass uses it.
type seeder interface {
	Seed(ref string) (*reconciler.Ticket, error)
	IsSeeded(digest string) bool
}

var _ server.Watcher = botWatcher{}

// Pass runs one bot pass and reports it for /status and the metrics. A
// digest ready to propose is seeded first: the merge requests' pipelines
// run with the new image, whose profile points into the shared store.
func (w botWatcher) Pass(ctx context.Context) (server.WatchResult, error) {
	changed := false
	if w.seeder != nil {
		rep, err := w.bot.Pass(ctx, time.Now(), bot.PassOptions{WatchOnly: true})
		if err != nil || !rep.Watch.Ready {
			return server.WatchResult{Digest: rep.Watch.Digest, Changed: rep.Watch.Changed}, err
		}
		changed = rep.Watch.Changed
		if !w.seeder.IsSeeded(rep.Watch.Digest) {
			t, err := w.seeder.Seed(rep.Watch.Image + "@" + rep.Watch.Digest)
			if err != nil {
				return server.WatchResult{Digest: rep.Watch.Digest, Changed: rep.Watch.Changed}, err
			}
			run, err := t.Wait(ctx)
			if err == nil && !w.seeder.IsSeeded(rep.Watch.Digest) {
				err = fmt.Errorf("seeding %s before proposing it: %s (proposing it on a later pass)", rep.Watch.Digest, run.Error)
			}
			if err != nil {
				return server.WatchResult{Digest: rep.Watch.Digest, Changed: rep.Watch.Changed}, err
			}
		}
	}
	rep, err := w.bot.Pass(ctx, time.Now(), bot.PassOptions{})
	out := server.WatchResult{Digest: rep.Watch.Digest, Changed: changed || rep.Watch.Changed}
	if rep.Propose == nil {
		return out, err
	}
	errs := []error{err}
	var proposed []string
	for _, p := range rep.Propose.Projects {
		out.MergeRequests = append(out.MergeRequests, server.MergeRequest{
			Project: p.Path, IID: int(p.MR), URL: p.MRURL, Action: string(p.Action),
		})
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("proposing in %s: %w", p.Path, p.Err))
		}
		if p.Action == propose.Opened || p.Action == propose.Updated {
			proposed = append(proposed, fmt.Sprintf("%s!%d", p.Path, p.MR))
		}
	}
	// Without a seeder, the proposal's pins reach the store by this pass.
	if len(proposed) > 0 && w.trigger != nil && w.seeder == nil {
		w.trigger(reconciler.Reason{Kind: reconciler.KindProposal, Detail: rep.Propose.Digest + " in " + strings.Join(proposed, ", ")})
	}
	return out, errors.Join(errs...)
}
