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
}

var _ server.Watcher = botWatcher{}

// Pass runs one bot pass and reports it for /status and the metrics.
func (w botWatcher) Pass(ctx context.Context) (server.WatchResult, error) {
	rep, err := w.bot.Pass(ctx, time.Now(), bot.PassOptions{})
	out := server.WatchResult{Digest: rep.Watch.Digest, Changed: rep.Watch.Changed}
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
	if len(proposed) > 0 && w.trigger != nil {
		w.trigger(reconciler.Reason{Kind: reconciler.KindProposal, Detail: rep.Propose.Digest + " in " + strings.Join(proposed, ", ")})
	}
	return out, errors.Join(errs...)
}
