package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// maxBody is the largest webhook body accepted.
const maxBody = 1 << 20

// The GitLab event names acted on.
const (
	eventMergeRequest = "Merge Request Hook"
	eventPush         = "Push Hook"
)

// hookPayload is the part of GitLab's merge request and push events that
// the decision needs. The digest is never taken from it: a pass re-reads
// the default branch. Every field is loose: a value of another type than
// GitLab's reads as empty, so such a delivery is ignored, not refused.
type hookPayload struct {
	ObjectKind loose[string] `json:"object_kind"`
	Ref        loose[string] `json:"ref"`
	After      loose[string] `json:"after"`
	Project    loose[struct {
		PathWithNamespace loose[string] `json:"path_with_namespace"`
		DefaultBranch     loose[string] `json:"default_branch"`
	}] `json:"project"`
	ObjectAttributes loose[struct {
		IID          loose[int64]  `json:"iid"`
		Action       loose[string] `json:"action"`
		State        loose[string] `json:"state"`
		TargetBranch loose[string] `json:"target_branch"`
		URL          loose[string] `json:"url"`
		Title        loose[string] `json:"title"`
	}] `json:"object_attributes"`
}

// loose is a JSON value of type T, or T's zero value when the JSON holds
// another type.
type loose[T any] struct{ V T }

func (l *loose[T]) UnmarshalJSON(b []byte) error {
	var v T
	if json.Unmarshal(b, &v) == nil {
		l.V = v
	}
	return nil
}

// hookDecision says whether a delivery triggers a pass, and why.
type hookDecision struct {
	act    bool
	reason string
}

// actedOn reports whether deliveries of event can trigger a pass; every
// other event is ignored before its body is read.
func actedOn(event string) bool { return event == eventMergeRequest || event == eventPush }

// decide is the pure decision on a parsed delivery: act on merge requests
// merged into, and pushes to, the default branch of a watched project.
// defaultBranch answers for payloads without project.default_branch ("":
// not known, and the delivery is ignored: never any branch).
func decide(event string, p hookPayload, watched map[string]bool, defaultBranch func(string) string) hookDecision {
	if !actedOn(event) {
		return hookDecision{reason: "event not acted on"}
	}
	path := p.Project.V.PathWithNamespace.V
	if !watched[strings.ToLower(path)] {
		return hookDecision{reason: "project not watched"}
	}
	attrs := p.ObjectAttributes.V
	if event == eventMergeRequest && (attrs.Action.V != "merge" || attrs.State.V != "merged") {
		return hookDecision{reason: "merge request not merged"}
	}
	def := p.Project.V.DefaultBranch.V
	if def == "" && defaultBranch != nil {
		def = defaultBranch(path)
	}
	if def == "" {
		return hookDecision{reason: "default branch of " + path + " not known"}
	}
	if event == eventMergeRequest {
		if attrs.TargetBranch.V != def {
			return hookDecision{reason: "merge into a branch other than the default"}
		}
		return hookDecision{act: true, reason: "merge request !" + strconv.FormatInt(attrs.IID.V, 10) + " merged into " + path}
	}
	if p.Ref.V != "refs/heads/"+def {
		return hookDecision{reason: "push to a branch other than the default"}
	}
	return hookDecision{act: true, reason: "push to " + p.Ref.V + " of " + path}
}

// eventLabel keeps the metrics' event label to a fixed set.
func eventLabel(event string) string {
	switch event {
	case eventMergeRequest:
		return "merge_request"
	case eventPush:
		return "push"
	}
	return "other"
}

func (s *Server) webhook(c echo.Context) error {
	req := c.Request()
	event := req.Header.Get("X-Gitlab-Event")
	count := func(result string) {
		s.metrics.webhooks.WithLabelValues(eventLabel(event), result).Inc()
		s.metrics.changed()
	}

	if !tokenMatches(req.Header.Get("X-Gitlab-Token"), s.opts.WebhookSecret) {
		count("unauthorized")
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong X-Gitlab-Token")
	}
	if !actedOn(event) {
		// Answered before the body is read: whatever its shape, GitLab
		// must not count it as a failure.
		count("ignored")
		return c.JSON(http.StatusOK, map[string]string{"status": "ignored", "reason": "event not acted on"})
	}
	if req.ContentLength > maxBody {
		count("too_large")
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body over 1 MiB")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err != nil {
		count("malformed")
		return echo.NewHTTPError(http.StatusBadRequest, "reading body")
	}
	if len(body) > maxBody {
		count("too_large")
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body over 1 MiB")
	}
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		count("malformed")
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
			return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON")
		}
		return echo.NewHTTPError(http.StatusBadRequest, "not a JSON object")
	}

	key := req.Header.Get("Idempotency-Key")
	if key == "" {
		key = req.Header.Get("X-Gitlab-Event-UUID")
	}
	if key != "" && s.dedup.seen(key, s.opts.Now()) {
		count("duplicate")
		return c.JSON(http.StatusOK, map[string]string{"status": "duplicate"})
	}

	d := decide(event, p, s.watched, func(project string) string {
		b, err := s.opts.Reconciler.LookupDefaultBranch(req.Context(), project)
		if err != nil {
			s.log.Warn("webhook ignored: default branch not known", "project", project, "err", err)
		}
		return b
	})
	if !d.act {
		d = s.decideProposal(event, p, d)
	}
	if !d.act {
		count("ignored")
		return c.JSON(http.StatusOK, map[string]string{"status": "ignored", "reason": d.reason})
	}
	if event == eventMergeRequest {
		s.noteMerged(p)
	}
	t := s.opts.Reconciler.Trigger(reconciler.Reason{Kind: reconciler.KindWebhook, Detail: d.reason})
	count("accepted")
	s.log.Info("webhook accepted", "event", event, "reason", d.reason, "run", t.ID)
	return c.JSON(http.StatusAccepted, map[string]string{"status": "accepted", "run_id": t.ID})
}

// noteMerged records, for /status, that the bot's merge request in the
// payload's project was merged, until the next watch pass reports it.
func (s *Server) noteMerged(p hookPayload) {
	a := p.ObjectAttributes.V
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch.Result == nil {
		return
	}
	for i, mr := range s.watch.Result.MergeRequests {
		if !strings.EqualFold(mr.Project, p.Project.V.PathWithNamespace.V) || mr.IID == 0 || int64(mr.IID) != a.IID.V {
			continue
		}
		url := a.URL.V
		if url == "" {
			url = mr.URL
		}
		// A copy: the result's slice is shared with earlier snapshots.
		mrs := append([]MergeRequest(nil), s.watch.Result.MergeRequests...)
		mrs[i].Action = "merged"
		mrs[i].LastMerged = &MergedRequest{IID: mr.IID, URL: url, Title: a.Title.V, MergedAt: s.opts.Now()}
		res := *s.watch.Result
		res.MergeRequests = mrs
		s.watch.Result = &res
		return
	}
}
