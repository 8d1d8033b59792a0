package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzWebhookBody: whatever the body of a merge request or push delivery,
// the webhook answers without panicking, 400 only for a body that is not
// a JSON object, and acts only on a watched project's default branch.
func FuzzWebhookBody(f *testing.F) {
	for _, seed := range []string{
		mrPayload("group/app", "merge", "main"), mrPayloadState("group/app", "merge", "opened", "main"),
		pushPayload("group/app", "refs/heads/main"), withoutDefault(pushPayload("group/app", "refs/heads/x")),
		`{}`, `[]`, `null`, `"x"`, `{"project":[]}`, `{"project":{"path_with_namespace":7}}`,
		`{"object_attributes":"merge"}`, `{"project":{"path_with_namespace":"group/app","default_branch":"main"},"ref":["refs/heads/main"]}`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	r := newRig(f, stager(nil))
	h := r.server(f).Handler()
	f.Fuzz(func(t *testing.T, body string, push bool) {
		event := eventMergeRequest
		if push {
			event = eventPush
		}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader([]byte(body)))
		req.Header.Set("X-Gitlab-Token", testSecret)
		req.Header.Set("X-Gitlab-Event", event)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var obj map[string]json.RawMessage
		isObject := json.Unmarshal([]byte(body), &obj) == nil && obj != nil
		switch w.Code {
		case http.StatusOK:
			if !isObject && body != "null" {
				t.Errorf("200 for a body that is not a JSON object: %q", body)
			}
		case http.StatusAccepted:
			var p hookPayload
			_ = json.Unmarshal([]byte(body), &p)
			if p.Project.V.PathWithNamespace.V == "" {
				t.Errorf("accepted without a project: %q", body)
			}
		case http.StatusBadRequest:
			if isObject {
				t.Errorf("400 for a JSON object: %q: %s", body, w.Body)
			}
		default:
			t.Errorf("status %d for %q", w.Code, body)
		}
	})
}
