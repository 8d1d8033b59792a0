package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// resync queues a pass; with ?wait=1 it answers with the pass's report.
func (s *Server) resync(c echo.Context) error {
	if !tokenMatches(bearer(c.Request().Header.Get("Authorization")), s.opts.ResyncToken) {
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong bearer token")
	}
	t := s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindResync, Detail: "POST /resync"})
	if w := c.QueryParam("wait"); w == "" || w == "0" || w == "false" {
		return c.JSON(http.StatusAccepted, map[string]string{"run_id": t.ID})
	}
	rep, err := t.Wait(c.Request().Context())
	if err != nil {
		return echo.NewHTTPError(http.StatusGatewayTimeout, "gave up waiting for run "+t.ID)
	}
	return c.JSON(http.StatusOK, rep)
}
