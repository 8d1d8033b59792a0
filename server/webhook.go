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
// the default branch.
type hookPayload struct {
	ObjectKind string `json:"object_kind"`
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Project    struct {
		PathWithNamespace string `json:"path_with_namespace"`
		DefaultBranch     string `json:"default_branch"`
	} `json:"project"`
	ObjectAttributes struct {
		IID            int    `json:"iid"`
		Action         string `json:"action"`
		State          string `json:"state"`
		TargetBranch   string `json:"target_branch"`
		MergeCommitSHA string `json:"merge_commit_sha"`
		URL            string `json:"url"`
		Title          string `json:"title"`
	} `json:"object_attributes"`
}

// hookDecision says whether a delivery triggers a pass, and why.
type hookDecision struct {
	act    bool
	reason string
}

// decide is the pure decision on a parsed delivery: act on merged merge
// requests into, and pushes to, the default branch of a watched project.
// knownDefault answers for payloads without project.default_branch.
func decide(event string, p hookPayload, watched map[string]bool, knownDefault func(string) string) hookDecision {
	path := p.Project.PathWithNamespace
	switch event {
	case eventMergeRequest, eventPush:
	default:
		return hookDecision{reason: "event not acted on"}
	}
	if !watched[strings.ToLower(path)] {
		return hookDecision{reason: "project not watched"}
	}
	def := p.Project.DefaultBranch
	if def == "" && knownDefault != nil {
		def = knownDefault(path)
	}
	switch event {
	case eventMergeRequest:
		if p.ObjectAttributes.Action != "merge" {
			return hookDecision{reason: "merge request not merged"}
		}
		if def != "" && p.ObjectAttributes.TargetBranch != def {
			return hookDecision{reason: "merge into a branch other than the default"}
		}
		return hookDecision{act: true, reason: "merge request !" + strconv.Itoa(p.ObjectAttributes.IID) + " merged into " + path}
	default:
		if def != "" && p.Ref != "refs/heads/"+def {
			return hookDecision{reason: "push to a branch other than the default"}
		}
		if def == "" && !strings.HasPrefix(p.Ref, "refs/heads/") {
			return hookDecision{reason: "push of a tag"}
		}
		return hookDecision{act: true, reason: "push to " + p.Ref + " of " + path}
	}
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
	count := func(result string) { s.metrics.webhooks.WithLabelValues(eventLabel(event), result).Inc() }

	if !tokenMatches(req.Header.Get("X-Gitlab-Token"), s.opts.WebhookSecret) {
		count("unauthorized")
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong X-Gitlab-Token")
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
		return echo.NewHTTPError(http.StatusBadRequest, "unexpected JSON shape")
	}

	key := req.Header.Get("Idempotency-Key")
	if key == "" {
		key = req.Header.Get("X-Gitlab-Event-UUID")
	}
	if key != "" && s.dedup.seen(key, s.opts.Now()) {
		count("duplicate")
		return c.JSON(http.StatusOK, map[string]string{"status": "duplicate"})
	}

	d := decide(event, p, s.watched, s.knownDefault)
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

// knownDefault returns the default branch a pass last observed.
func (s *Server) knownDefault(project string) string {
	return s.opts.Reconciler.DefaultBranch(project)
}

// noteMerged records, for /status, that the bot's merge request in the
// payload's project was merged, until the next watch pass reports it.
func (s *Server) noteMerged(p hookPayload) {
	a := p.ObjectAttributes
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch.Result == nil {
		return
	}
	for i, mr := range s.watch.Result.MergeRequests {
		if !strings.EqualFold(mr.Project, p.Project.PathWithNamespace) || mr.IID == 0 || mr.IID != a.IID {
			continue
		}
		url := a.URL
		if url == "" {
			url = mr.URL
		}
		// A copy: the result's slice is shared with earlier snapshots.
		mrs := append([]MergeRequest(nil), s.watch.Result.MergeRequests...)
		mrs[i].Action = "merged"
		mrs[i].LastMerged = &MergedRequest{IID: a.IID, URL: url, Title: a.Title, MergedAt: s.opts.Now()}
		res := *s.watch.Result
		res.MergeRequests = mrs
		s.watch.Result = &res
		return
	}
}
