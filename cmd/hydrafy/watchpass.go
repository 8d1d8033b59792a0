package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot"
	"gitlab.com/hydrafy/hydrafy/server"
)

// botWatcher is the scheduled pass of `hydrafy serve`: the bot's watch and,
// when the digest is ready, propose pass, as `hydrafy check` runs it.
type botWatcher struct{ bot *bot.Bot }

var _ server.Watcher = botWatcher{}

// Pass runs one bot pass and reports it for /status and the metrics.
func (w botWatcher) Pass(ctx context.Context) (server.WatchResult, error) {
	rep, err := w.bot.Pass(ctx, time.Now(), bot.PassOptions{})
	out := server.WatchResult{Digest: rep.Watch.Digest, Changed: rep.Watch.Changed}
	if rep.Propose == nil {
		return out, err
	}
	errs := []error{err}
	for _, p := range rep.Propose.Projects {
		out.MergeRequests = append(out.MergeRequests, server.MergeRequest{
			Project: p.Path, IID: int(p.MR), URL: p.MRURL, Action: string(p.Action),
		})
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("proposing in %s: %w", p.Path, p.Err))
		}
	}
	return out, errors.Join(errs...)
}
