package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// roleRoutes adds the routes that depend on what this host runs. A
// poll-only host answers /webhooks/gitlab with 404, as if it had none; a
// bot-only host has no reconciler to trigger, so /resync is 404 too.
func (s *Server) roleRoutes(e *echo.Echo) {
	switch {
	case s.opts.PollOnly:
		e.POST("/webhooks/gitlab", notHere("this host takes no webhooks (server.webhooks = false or a bot-only host)"))
	default:
		e.POST("/webhooks/gitlab", s.webhook)
	}
	if s.opts.Reconciler == nil {
		e.POST("/resync", notHere("this host runs only the bot (reconcile.enabled = false): it has no store to resync"))
	} else {
		e.POST("/resync", s.resync)
	}
}

func notHere(msg string) echo.HandlerFunc {
	return func(echo.Context) error { return echo.NewHTTPError(http.StatusNotFound, msg) }
}

// decideProposal acts on a push to the proposal branch of a watched
// project, which decide does not: the pass it triggers seeds the digest the
// branch pins, so that the merge request's pipeline finds its store on
// this host too, whichever host runs the bot. Otherwise it returns d.
func (s *Server) decideProposal(event string, p hookPayload, d hookDecision) hookDecision {
	b := s.opts.ProposalBranch
	path := p.Project.V.PathWithNamespace.V
	if event != eventPush || b == "" || !s.watched[strings.ToLower(path)] {
		return d
	}
	if p.Ref.V != "refs/heads/"+b || p.After.V == zeroSHA {
		return d
	}
	return hookDecision{act: true, reason: "push to proposal branch " + b + " of " + path}
}

// zeroSHA is a push's "after" when the branch was deleted (a merged
// proposal's source branch): nothing to seed.
const zeroSHA = "0000000000000000000000000000000000000000"
