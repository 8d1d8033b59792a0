package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// resync queues a pass; with ?wait=1 it answers with the pass's report.
// With ?watch=1 it runs the watch pass instead (the scheduled one: seed a
// ready digest, then propose it) and answers with its result.
func (s *Server) resync(c echo.Context) error {
	if !tokenMatches(bearer(c.Request().Header.Get("Authorization")), s.opts.ResyncToken) {
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong bearer token")
	}
	if truthy(c.QueryParam("watch")) {
		if s.opts.Watcher == nil {
			return echo.NewHTTPError(http.StatusNotFound, "this daemon runs no watch pass")
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), watchTimeout)
		defer cancel()
		s.RunWatch(ctx)
		s.mu.Lock()
		w := s.watch
		s.mu.Unlock()
		return c.JSON(http.StatusOK, w)
	}
	// A caller waiting for the report gets its pass at once; others
	// coalesce and follow the pace of [reconcile] min_interval.
	wait := truthy(c.QueryParam("wait"))
	t := s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindResync, Detail: "POST /resync", Immediate: wait})
	if !wait {
		return c.JSON(http.StatusAccepted, map[string]string{"run_id": t.ID})
	}
	rep, err := t.Wait(c.Request().Context())
	if err != nil {
		return echo.NewHTTPError(http.StatusGatewayTimeout, "gave up waiting for run "+t.ID)
	}
	return c.JSON(http.StatusOK, rep)
}

// truthy reads a query flag: "" , "0" and "false" are off.
func truthy(v string) bool { return v != "" && v != "0" && v != "false" }
