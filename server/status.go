package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// statusDoc is the JSON of GET /status.
type statusDoc struct {
	// Role is what this host runs: "bot", "reconciler" or both.
	Role string `json:"role,omitempty"`
	// Webhooks says whether this host takes webhooks; false: it finds
	// changes by its resync schedule alone.
	Webhooks bool                 `json:"webhooks"`
	Tracked  string               `json:"tracked_digest,omitempty"`
	Watch    watchStatus          `json:"watch"`
	Projects []projectStatus      `json:"projects"`
	Seeded   []reconciler.Seeded  `json:"seeded"`
	Stalled  map[string]string    `json:"stalled,omitempty"`
	InFlight *reconciler.InFlight `json:"in_flight,omitempty"`
	Current  *reconciler.Report   `json:"current"`
	Queued   bool                 `json:"queued"`
	Last     *reconciler.Report   `json:"last"`
	// Recent are the last few finished passes, newest last.
	Recent []reconciler.Report `json:"recent"`
	// StoreFreeBytes is the free space of the live store's filesystem.
	StoreFreeBytes *int64 `json:"store_free_bytes,omitempty"`
	// LastGC is the last garbage collection of the live store.
	LastGC *reconciler.CollectReport `json:"last_gc,omitempty"`
}

// recentRuns is how many finished passes /status lists.
const recentRuns = 5

type projectStatus struct {
	Path         string           `json:"path"`
	Branch       string           `json:"default_branch,omitempty"`
	Pins         []reconciler.Pin `json:"pins"`
	Error        string           `json:"error,omitempty"`
	MergeRequest *MergeRequest    `json:"merge_request,omitempty"`
}

func (s *Server) status(c echo.Context) error {
	return c.JSON(http.StatusOK, s.statusDoc())
}

func (s *Server) statusDoc() statusDoc {
	var rs reconciler.Status
	if s.opts.Reconciler != nil {
		rs = s.opts.Reconciler.Status()
	}
	s.mu.Lock()
	w := s.watch
	s.mu.Unlock()
	doc := statusDoc{
		Role:     s.opts.Role,
		Webhooks: !s.opts.PollOnly,
		Watch:    w,
		Seeded:   rs.Seeded,
		Stalled:  rs.Stalled,
		InFlight: rs.InFlight,
		Current:  rs.Current,
		Queued:   rs.Queued,
		Last:     rs.Last,
		Projects: []projectStatus{},
		Recent:   rs.Runs[max(0, len(rs.Runs)-recentRuns):],

		StoreFreeBytes: rs.StoreFreeBytes,
		LastGC:         rs.LastGC,
	}
	if w.Result != nil {
		doc.Tracked = w.Result.Digest
	}
	if doc.Seeded == nil {
		doc.Seeded = []reconciler.Seeded{}
	}
	observed := map[string]reconciler.ProjectPins{}
	for _, p := range rs.Observed.Projects {
		observed[strings.ToLower(p.Path)] = p
	}
	for _, path := range s.opts.Projects {
		o := observed[strings.ToLower(path)]
		ps := projectStatus{Path: path, Branch: o.Branch, Pins: o.Pins, Error: o.Error}
		if ps.Pins == nil {
			ps.Pins = []reconciler.Pin{}
		}
		if w.Result != nil {
			for _, mr := range w.Result.MergeRequests {
				if strings.EqualFold(mr.Project, path) {
					ps.MergeRequest = &mr
				}
			}
		}
		doc.Projects = append(doc.Projects, ps)
	}
	return doc
}
