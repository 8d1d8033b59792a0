package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func hookHeaders(event string) map[string]string {
	return map[string]string{"X-Gitlab-Token": testSecret, "X-Gitlab-Event": event}
}

// TestPollOnly: a poll-only server starts without a webhook secret, serves
// /status, /metrics and /resync, and answers /webhooks/gitlab with 404
// without triggering anything.
func TestPollOnly(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.WebhookSecret = ""
	r.opts.PollOnly = true
	r.opts.Role = "reconciler"
	ts := httptest.NewServer(r.server(t).Handler())
	defer ts.Close()

	code, body := delivery{headers: hookHeaders(eventMergeRequest), body: mrPayload("group/app", "merge", "main")}.send(t, ts.URL)
	if code != http.StatusNotFound || !strings.Contains(body["error"], "server.webhooks = false") {
		t.Errorf("webhook: %d %v, want 404 naming server.webhooks", code, body)
	}
	if code, body := resyncReq(t, ts.URL+"/resync", "Bearer "+testResync); code != http.StatusAccepted {
		t.Errorf("resync: %d %s", code, body)
	}
	if got := r.rec.n.Load(); got != 1 {
		t.Errorf("%d triggers, want 1 (the resync only)", got)
	}
	for _, path := range []string{"/status", "/metrics", "/healthz"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	doc := r.statusOf(t, ts.URL)
	if doc.Role != "reconciler" || doc.Webhooks {
		t.Errorf("status role %q, webhooks %v; want reconciler, false", doc.Role, doc.Webhooks)
	}

	// Without PollOnly the same options are refused: webhooks need a secret.
	r.opts.PollOnly = false
	if _, err := New(r.opts); !errors.Is(err, ErrNoSecret) {
		t.Errorf("New with webhooks and no secret: %v, want ErrNoSecret", err)
	}
}

type watcherFunc func(context.Context) (WatchResult, error)

func (f watcherFunc) Pass(ctx context.Context) (WatchResult, error) { return f(ctx) }

// TestBotOnly: a server without a reconciler runs the watch pass and
// reports it; it takes no webhooks and no resyncs.
func TestBotOnly(t *testing.T) {
	s, err := New(Options{
		Role:     "bot",
		Projects: []string{"group/app"},
		Watcher: watcherFunc(func(context.Context) (WatchResult, error) {
			return WatchResult{Digest: digestA, Changed: true, MergeRequests: []MergeRequest{{Project: "group/app", IID: 3, Action: "opened"}}}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if code, body := resyncReq(t, ts.URL+"/resync", "Bearer "+testResync); code != http.StatusNotFound || !strings.Contains(string(body), "reconcile.enabled = false") {
		t.Errorf("resync: %d %s, want 404 naming reconcile.enabled", code, body)
	}
	if code, _ := (delivery{headers: hookHeaders(eventPush), body: pushPayload("group/app", "refs/heads/main")}).send(t, ts.URL); code != http.StatusNotFound {
		t.Errorf("webhook: %d, want 404", code)
	}
	s.RunWatch(context.Background())
	doc := (&rig{}).statusOf(t, ts.URL)
	if doc.Role != "bot" || doc.Tracked != digestA || len(doc.Projects) != 1 || doc.Projects[0].MergeRequest == nil || doc.Projects[0].MergeRequest.IID != 3 {
		t.Errorf("status: %+v", doc)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ctx, ln); err != nil {
		t.Errorf("Serve without a reconciler: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a reconciler or a watcher: no error")
	}
}

// TestProposalPush: on a host that does not run the bot, a push to the
// proposal branch of a watched project triggers a pass (it seeds what the
// proposal pins); its deletion, other branches and other projects do not.
func TestProposalPush(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.ProposalBranch = "hydrafy/nixos-nix-digest"
	ts := httptest.NewServer(r.server(t).Handler())
	defer ts.Close()
	deleted := strings.Replace(pushPayload("group/app", "refs/heads/hydrafy/nixos-nix-digest"), `"after":"0123abcd"`, `"after":"`+zeroSHA+`"`, 1)
	for _, tc := range []struct {
		name, body string
		want       string
	}{
		{"proposal push", pushPayload("group/app", "refs/heads/hydrafy/nixos-nix-digest"), "accepted"},
		{"proposal branch deleted", deleted, "ignored"},
		{"other branch", pushPayload("group/app", "refs/heads/feature"), "ignored"},
		{"unwatched project", pushPayload("group/other", "refs/heads/hydrafy/nixos-nix-digest"), "ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.rec.n.Load()
			_, body := delivery{headers: hookHeaders(eventPush), body: tc.body}.send(t, ts.URL)
			if body["status"] != tc.want {
				t.Errorf("answer %v, want %s", body, tc.want)
			}
			if got, want := r.rec.n.Load()-before, map[bool]int32{true: 1}[tc.want == "accepted"]; got != want {
				t.Errorf("%d triggers, want %d", got, want)
			}
		})
	}
}

func (r *rig) statusOf(t *testing.T, url string) statusDoc {
	t.Helper()
	resp, err := http.Get(url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}
