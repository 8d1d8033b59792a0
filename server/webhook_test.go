package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

func mrPayload(project, action, target string) string {
	return mrPayloadState(project, action, "merged", target)
}

func mrPayloadState(project, action, state, target string) string {
	return fmt.Sprintf(`{"object_kind":"merge_request","event_type":"merge_request",
"project":{"path_with_namespace":%q,"default_branch":"main"},
"object_attributes":{"iid":7,"action":%q,"state":%q,"target_branch":%q,"source_branch":"hydrafy/nixos-nix-digest","merge_commit_sha":"0123abcd"}}`,
		project, action, state, target)
}

func pushPayload(project, ref string) string {
	return fmt.Sprintf(`{"object_kind":"push","ref":%q,"after":"0123abcd",
"project":{"path_with_namespace":%q,"default_branch":"main"}}`, ref, project)
}

// withoutDefault drops project.default_branch from a payload.
func withoutDefault(payload string) string {
	return strings.Replace(payload, `,"default_branch":"main"`, "", 1)
}

type delivery struct {
	headers map[string]string
	body    string
	chunked bool // send without Content-Length
}

func (d delivery) send(t testing.TB, url string) (int, map[string]string) {
	t.Helper()
	code, out, err := d.do(url)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// do posts the delivery; it is safe in goroutines other than the test's.
func (d delivery) do(url string) (int, map[string]string, error) {
	var body io.Reader = strings.NewReader(d.body)
	if d.chunked {
		body = io.MultiReader(body) // hides the length from net/http
	}
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/gitlab", body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]string
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, nil
}

func hook(event, body string, extra ...string) delivery {
	h := map[string]string{"X-Gitlab-Token": testSecret, "X-Gitlab-Event": event}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return delivery{headers: h, body: body}
}

func TestWebhookInputs(t *testing.T) {
	merged := mrPayload("group/app", "merge", "main")
	big := `{"object_kind":"push","padding":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct {
		name         string
		deliveries   []delivery
		wantCodes    []int
		wantStatus   string // "status" of the last answer
		wantTriggers int32
	}{
		{"no token", []delivery{{headers: map[string]string{"X-Gitlab-Event": "Merge Request Hook"}, body: merged}},
			[]int{401}, "", 0},
		{"wrong token", []delivery{hook("Merge Request Hook", merged, "X-Gitlab-Token", "guess")},
			[]int{401}, "", 0},
		{"token prefix", []delivery{hook("Merge Request Hook", merged, "X-Gitlab-Token", testSecret[:5])},
			[]int{401}, "", 0},
		{"token in the wrong header", []delivery{{headers: map[string]string{
			"X-Gitlab-Event": "Merge Request Hook", "Authorization": "Bearer " + testSecret, "X-Gitlab-Secret": testSecret}, body: merged}},
			[]int{401}, "", 0},
		{"2 MiB body", []delivery{hook("Push Hook", big)}, []int{413}, "", 0},
		{"2 MiB body without length", []delivery{{headers: hook("Push Hook", "").headers, body: big, chunked: true}}, []int{413}, "", 0},
		{"malformed JSON", []delivery{hook("Merge Request Hook", `{"object_kind":"merge_request",`)}, []int{400}, "", 0},
		{"not JSON at all", []delivery{hook("Push Hook", `<xml/>`)}, []int{400}, "", 0},
		{"not a JSON object", []delivery{hook("Push Hook", `[1,2]`)}, []int{400}, "", 0},
		{"unexpected field types, unwatched", []delivery{hook("Push Hook", `{"ref":42,"project":"group/app"}`)}, []int{200}, "ignored", 0},
		{"unexpected field types, watched", []delivery{hook("Merge Request Hook",
			`{"project":{"path_with_namespace":"group/app","default_branch":["main"]},"object_attributes":{"iid":"7","action":"merge","state":"merged","target_branch":{"name":"main"}}}`)},
			[]int{200}, "ignored", 0},
		{"unknown event", []delivery{hook("Pipeline Hook", `{"object_kind":"pipeline"}`)}, []int{200}, "ignored", 0},
		{"unknown event, body not JSON", []delivery{hook("Pipeline Hook", `<xml/>`)}, []int{200}, "ignored", 0},
		{"unknown event, 2 MiB body", []delivery{hook("Job Hook", big)}, []int{200}, "ignored", 0},
		{"no event header", []delivery{hook("", merged)}, []int{200}, "ignored", 0},
		{"merge action, state opened", []delivery{hook("Merge Request Hook", mrPayloadState("group/app", "merge", "opened", "main"))}, []int{200}, "ignored", 0},
		{"merge action, state closed", []delivery{hook("Merge Request Hook", mrPayloadState("group/app", "merge", "closed", "main"))}, []int{200}, "ignored", 0},
		{"merged, default branch looked up", []delivery{hook("Merge Request Hook", withoutDefault(merged))}, []int{202}, "accepted", 1},
		{"merge into another branch, default branch looked up", []delivery{hook("Merge Request Hook", withoutDefault(mrPayload("group/app", "merge", "feature")))}, []int{200}, "ignored", 0},
		{"push to default branch, looked up", []delivery{hook("Push Hook", withoutDefault(pushPayload("group/app", "refs/heads/main")))}, []int{202}, "accepted", 1},
		{"push to another branch, default branch looked up", []delivery{hook("Push Hook", withoutDefault(pushPayload("group/app", "refs/heads/feature")))}, []int{200}, "ignored", 0},
		{"long Idempotency-Key is kept hashed", []delivery{
			hook("Merge Request Hook", merged, "Idempotency-Key", strings.Repeat("k", 16<<10)),
			hook("Merge Request Hook", merged, "Idempotency-Key", strings.Repeat("k", 16<<10)),
		}, []int{202, 200}, "duplicate", 1},
		{"merge request opened", []delivery{hook("Merge Request Hook", mrPayload("group/app", "open", "main"))}, []int{200}, "ignored", 0},
		{"merge request closed", []delivery{hook("Merge Request Hook", mrPayload("group/app", "close", "main"))}, []int{200}, "ignored", 0},
		{"merge into another branch", []delivery{hook("Merge Request Hook", mrPayload("group/app", "merge", "release"))}, []int{200}, "ignored", 0},
		{"unwatched project", []delivery{hook("Merge Request Hook", mrPayload("group/other", "merge", "main"))}, []int{200}, "ignored", 0},
		{"push to another branch", []delivery{hook("Push Hook", pushPayload("group/app", "refs/heads/feature"))}, []int{200}, "ignored", 0},
		{"push of a tag", []delivery{hook("Push Hook", pushPayload("group/app", "refs/tags/main"))}, []int{200}, "ignored", 0},
		{"merged", []delivery{hook("Merge Request Hook", merged)}, []int{202}, "accepted", 1},
		{"project path case differs", []delivery{hook("Merge Request Hook", mrPayload("Group/App", "merge", "main"))}, []int{202}, "accepted", 1},
		{"push to default branch", []delivery{hook("Push Hook", pushPayload("group/app", "refs/heads/main"))}, []int{202}, "accepted", 1},
		{"duplicate Idempotency-Key", []delivery{
			hook("Merge Request Hook", merged, "Idempotency-Key", "k-1", "X-Gitlab-Event-UUID", "u-1"),
			hook("Merge Request Hook", merged, "Idempotency-Key", "k-1", "X-Gitlab-Event-UUID", "u-2"),
		}, []int{202, 200}, "duplicate", 1},
		{"duplicate event UUID", []delivery{
			hook("Push Hook", pushPayload("group/app", "refs/heads/main"), "X-Gitlab-Event-UUID", "u-3"),
			hook("Push Hook", pushPayload("group/app", "refs/heads/main"), "X-Gitlab-Event-UUID", "u-3"),
		}, []int{202, 200}, "duplicate", 1},
		{"distinct keys", []delivery{
			hook("Merge Request Hook", merged, "Idempotency-Key", "k-2"),
			hook("Merge Request Hook", merged, "Idempotency-Key", "k-3"),
		}, []int{202, 202}, "accepted", 2},
		{"rejected delivery does not burn its key", []delivery{
			hook("Merge Request Hook", merged, "Idempotency-Key", "k-4", "X-Gitlab-Token", "guess"),
			hook("Merge Request Hook", merged, "Idempotency-Key", "k-4"),
		}, []int{401, 202}, "accepted", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := newRig(t, stager(nil))
			r.opts.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ts := httptest.NewServer(r.server(t).Handler())
			defer ts.Close()
			var last map[string]string
			for i, d := range tc.deliveries {
				code, out := d.send(t, ts.URL)
				if code != tc.wantCodes[i] {
					t.Errorf("delivery %d: status %d, want %d (%v)", i, code, tc.wantCodes[i], out)
				}
				last = out
			}
			if tc.wantStatus != "" && last["status"] != tc.wantStatus {
				t.Errorf("status %q, want %q (%v)", last["status"], tc.wantStatus, last)
			}
			if got := r.rec.n.Load(); got != tc.wantTriggers {
				t.Errorf("%d triggers, want %d", got, tc.wantTriggers)
			}
			if strings.Contains(logs.String(), testSecret) {
				t.Errorf("the webhook secret reached the log:\n%s", logs.String())
			}
		})
	}
}

func TestWebhookCountsMetrics(t *testing.T) {
	r := newRig(t, stager(nil))
	ts := httptest.NewServer(r.server(t).Handler())
	defer ts.Close()
	hook("Merge Request Hook", mrPayload("group/app", "merge", "main")).send(t, ts.URL)
	delivery{headers: map[string]string{"X-Gitlab-Event": "Made Up Hook"}}.send(t, ts.URL)
	body := get(t, ts.URL+"/metrics", 200)
	for _, want := range []string{
		`hydrafy_webhooks_total{event="merge_request",result="accepted"} 1`,
		`hydrafy_webhooks_total{event="other",result="unauthorized"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestNewRefusesEmptySecret(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.WebhookSecret = ""
	if _, err := New(r.opts); err == nil || !strings.Contains(err.Error(), "webhook secret") {
		t.Errorf("New with an empty secret: %v", err)
	}
}

func TestNewRefusesBadSchedule(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.ResyncSchedule = "every now and then"
	if _, err := New(r.opts); err == nil || !strings.Contains(err.Error(), "reconcile.schedule") {
		t.Errorf("New with a bad schedule: %v", err)
	}
}

func get(t testing.TB, url string, want int) string {
	t.Helper()
	code, body := nixtest.Get(t, url)
	if code != want {
		t.Errorf("GET %s: %d, want %d: %s", url, code, want, body)
	}
	return body
}

// TestWebhookDefaultBranchUnknown: when neither the delivery, a pass nor
// GitLab tells the default branch, the delivery is ignored, not taken for
// any branch.
func TestWebhookDefaultBranchUnknown(t *testing.T) {
	r := newRig(t, stager(nil))
	r.repo.branchErr = errors.New("503 Service Unavailable")
	ts := httptest.NewServer(r.server(t).Handler())
	defer ts.Close()
	for _, d := range []delivery{
		hook("Push Hook", withoutDefault(pushPayload("group/app", "refs/heads/main"))),
		hook("Merge Request Hook", withoutDefault(mrPayload("group/app", "merge", "main"))),
	} {
		code, out := d.send(t, ts.URL)
		if code != 200 || out["status"] != "ignored" || !strings.Contains(out["reason"], "not known") {
			t.Errorf("answer %d %v, want 200 ignored: default branch not known", code, out)
		}
	}
	if n := r.rec.n.Load(); n != 0 {
		t.Errorf("%d triggers, want none", n)
	}
}
