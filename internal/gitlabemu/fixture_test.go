package gitlabemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientFixtures is the testdata directory of the client module, whose
// recorded GitLab responses the emulator's JSON is checked against.
func clientFixtures(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gitlab.com/gitlab-org/api/client-go").Output()
	if err != nil {
		t.Fatalf("locating the client module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "testdata")
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return v
}

func apiGet(t *testing.T, url string) any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("PRIVATE-TOKEN", testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// jsonType names a decoded JSON value's type; null matches any type, as
// GitLab sends null for unset optional fields.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// sameShape reports each key (dotted path) of fixture's keys that got
// lacks or holds with another JSON type.
func sameShape(fixture, got any, keys []string) []string {
	var bad []string
	for _, k := range keys {
		fv, fok := lookup(fixture, k)
		gv, gok := lookup(got, k)
		switch {
		case !fok:
			bad = append(bad, k+": not in the fixture (fix the test)")
		case !gok:
			bad = append(bad, k+": missing")
		case jsonType(fv) != "null" && jsonType(gv) != "null" && jsonType(fv) != jsonType(gv):
			bad = append(bad, fmt.Sprintf("%s: %s, fixture has %s", k, jsonType(gv), jsonType(fv)))
		}
	}
	return bad
}

func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		if a, ok := v.([]any); ok {
			if len(a) == 0 {
				return nil, false
			}
			v = a[0]
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

var commitKeys = []string{"id", "short_id", "title", "message", "author_name", "author_email", "authored_date",
	"committer_name", "committer_email", "committed_date", "parent_ids"}

var mrKeys = []string{"id", "iid", "project_id", "title", "description", "state", "created_at", "updated_at",
	"merged_by", "merged_at", "closed_by", "closed_at", "target_branch", "source_branch", "user_notes_count",
	"author", "author.username", "assignee", "assignees", "reviewers", "source_project_id", "target_project_id",
	"labels", "work_in_progress", "merge_when_pipeline_succeeds", "detailed_merge_status", "sha",
	"merge_commit_sha", "should_remove_source_branch", "force_remove_source_branch", "reference", "web_url", "squash"}

var hookProjectKeys = []string{"id", "name", "web_url", "git_ssh_url", "git_http_url", "namespace",
	"path_with_namespace", "default_branch", "url", "ssh_url", "http_url"}

func prefixed(prefix string, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = prefix + k
	}
	return out
}

func TestResponsesMatchClientFixtures(t *testing.T) {
	emu, ts, gl := newTestServer(t)
	dir := clientFixtures(t)
	if _, err := emu.Push("group/app", "topic", "root", "change", map[string]string{"a": "a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gl.MergeRequests.CreateMergeRequest("group/app", mrOpts("topic")); err != nil {
		t.Fatal(err)
	}
	api := ts.URL + "/api/v4/projects/group%2Fapp"
	tests := []struct {
		fixture string
		url     string
		keys    []string
	}{
		{"get_branch.json", api + "/repository/branches/main",
			append([]string{"name", "merged", "protected", "default", "developers_can_push", "developers_can_merge", "can_push"}, prefixed("commit.", commitKeys)...)},
		{"list_branches.json", api + "/repository/branches", []string{"name", "merged", "protected", "default", "commit", "commit.id"}},
		{"get_commit.json", api + "/repository/commits/main", append([]string{"stats", "stats.total", "status", "project_id", "last_pipeline"}, commitKeys[:5]...)},
		{"get_merge_request.json", api + "/merge_requests/1", append([]string{"head_pipeline", "changes_count"}, mrKeys...)},
		{"get_merge_requests.json", api + "/merge_requests?state=opened", mrKeys},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			bad := sameShape(readJSON(t, filepath.Join(dir, tt.fixture)), apiGet(t, tt.url), tt.keys)
			if len(bad) > 0 {
				t.Errorf("emulator response differs from %s:\n%s", tt.fixture, strings.Join(bad, "\n"))
			}
		})
	}
}

func TestHookPayloadsMatchClientFixtures(t *testing.T) {
	emu, _, gl := newTestServer(t)
	dir := clientFixtures(t)
	sink := &hookSink{}
	hs := httptest.NewServer(sink)
	defer hs.Close()
	if _, err := emu.AddHook("group/app", hs.URL, "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Push("group/app", "topic", "root", "change", map[string]string{"a": "a"}); err != nil {
		t.Fatal(err)
	}
	mr, _, err := gl.MergeRequests.CreateMergeRequest("group/app", mrOpts("topic"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Merge("group/app", mr.IID, "root"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitHooks(ctx); err != nil {
		t.Fatal(err)
	}
	mrEvents, pushes := sink.events("Merge Request Hook"), sink.events("Push Hook")
	if len(mrEvents) == 0 || len(pushes) == 0 {
		t.Fatalf("%d merge request and %d push events", len(mrEvents), len(pushes))
	}
	mrAttrs := []string{"id", "iid", "target_branch", "source_branch", "source_project_id", "target_project_id",
		"author_id", "assignee_ids", "title", "created_at", "updated_at", "state", "merge_status", "description",
		"url", "source", "target", "last_commit", "labels", "action", "state_id", "detailed_merge_status"}
	pushKeys := []string{"object_kind", "event_name", "before", "after", "ref", "ref_protected", "checkout_sha",
		"user_id", "user_name", "user_username", "user_email", "project_id", "total_commits_count",
		"commits", "commits.id", "commits.message", "commits.timestamp", "commits.url", "commits.author",
		"commits.added", "commits.modified", "commits.removed", "repository", "repository.name"}
	tests := []struct {
		fixture string
		got     map[string]any
		keys    []string
	}{
		{"webhooks/merge_request.json", mrEvents[len(mrEvents)-1], append(append([]string{"object_kind", "event_type", "user", "user.username", "labels"},
			prefixed("project.", hookProjectKeys)...), prefixed("object_attributes.", mrAttrs)...)},
		{"webhooks/push.json", pushes[0], append(pushKeys, prefixed("project.", hookProjectKeys)...)},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			bad := sameShape(readJSON(t, filepath.Join(dir, tt.fixture)), any(tt.got), tt.keys)
			if len(bad) > 0 {
				t.Errorf("emulator payload differs from %s:\n%s", tt.fixture, strings.Join(bad, "\n"))
			}
		})
	}
}

func TestNotFoundBodies(t *testing.T) {
	_, ts, _ := newTestServer(t)
	tests := []struct{ path, want string }{
		{"/api/v4/projects/group%2Fnope", "404 Project Not Found"},
		{"/api/v4/projects/1/repository/files/nope?ref=main", "404 File Not Found"},
		{"/api/v4/projects/1/repository/branches/nope", "404 Branch Not Found"},
		{"/api/v4/projects/1/merge_requests/9", "404 Not found"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+tt.path, nil)
		req.Header.Set("PRIVATE-TOKEN", testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || body["message"] != tt.want {
			t.Errorf("GET %s: %d %v, want 404 %q", tt.path, resp.StatusCode, body, tt.want)
		}
	}
}
