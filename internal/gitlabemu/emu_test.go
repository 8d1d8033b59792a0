package gitlabemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

const (
	testToken = "glpat-test"
	readToken = "glpat-read"
)

// newTestServer starts an emulator with one project and returns it with a
// client authenticated by an api token.
func newTestServer(t *testing.T) (*Server, *httptest.Server, *gitlab.Client) {
	t.Helper()
	emu := New(Options{HookBackoff: 10 * time.Millisecond})
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { ts.Close(); emu.Close() })
	emu.AddToken(testToken, "hydrafy-bot")
	emu.AddToken(readToken, "reader", "read_api")
	if _, err := emu.AddProject("group/app", "main", map[string]string{
		".gitlab-ci.yml": "image: nixos/nix:latest\n",
		"ci/build.yml":   "build:\n  image: nixos/nix\n",
	}); err != nil {
		t.Fatal(err)
	}
	return emu, ts, newClient(t, ts.URL, testToken)
}

func newClient(t *testing.T, url, token string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(url+"/api/v4"), gitlab.WithCustomRetryWaitMinMax(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(resp *gitlab.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func TestProjectsAndFiles(t *testing.T) {
	_, _, gl := newTestServer(t)
	byPath, _, err := gl.Projects.GetProject("group/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	byID, _, err := gl.Projects.GetProject(byPath.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if byID.PathWithNamespace != "group/app" || byID.DefaultBranch != "main" || !strings.HasSuffix(byID.WebURL, "/group/app") {
		t.Errorf("project = %+v", byID)
	}
	_, resp, err := gl.Projects.GetProject("group/nope", nil)
	if status(resp) != http.StatusNotFound || !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("unknown project: status %d, err %v", status(resp), err)
	}

	f, _, err := gl.RepositoryFiles.GetFile("group/app", "ci/build.yml", &gitlab.GetFileOptions{Ref: gitlab.Ptr("main")})
	if err != nil {
		t.Fatal(err)
	}
	if f.Encoding != "base64" || f.BlobID != blobID([]byte("build:\n  image: nixos/nix\n")) || f.LastCommitID == "" {
		t.Errorf("file = %+v", f)
	}
	raw, _, err := gl.RepositoryFiles.GetRawFile("group/app", "ci/build.yml", &gitlab.GetRawFileOptions{Ref: gitlab.Ptr("main")})
	if err != nil || string(raw) != "build:\n  image: nixos/nix\n" {
		t.Errorf("raw = %q, %v", raw, err)
	}
	meta, _, err := gl.RepositoryFiles.GetFileMetaData("group/app", "ci/build.yml", &gitlab.GetFileMetaDataOptions{Ref: gitlab.Ptr("main")})
	if err != nil || meta.BlobID != f.BlobID || meta.LastCommitID != f.LastCommitID || meta.Size != f.Size {
		t.Errorf("HEAD file = %+v, %v", meta, err)
	}
	_, resp, err = gl.RepositoryFiles.GetFile("group/app", "missing.yml", &gitlab.GetFileOptions{Ref: gitlab.Ptr("main")})
	if status(resp) != http.StatusNotFound || !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("missing file: status %d, err %v", status(resp), err)
	}
}

func TestAuth(t *testing.T) {
	_, ts, gl := newTestServer(t)
	tests := []struct {
		name   string
		client *gitlab.Client
		write  bool
		want   int
	}{
		{"no token", newClient(t, ts.URL, ""), false, http.StatusUnauthorized},
		{"wrong token", newClient(t, ts.URL, "nope"), false, http.StatusUnauthorized},
		{"read_api reads", newClient(t, ts.URL, readToken), false, http.StatusOK},
		{"read_api writes", newClient(t, ts.URL, readToken), true, http.StatusForbidden},
		{"api writes", gl, true, http.StatusCreated},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *gitlab.Response
			var err error
			if tt.write {
				_, resp, err = tt.client.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{
					Branch: gitlab.Ptr("b" + string(rune('a'+i))), Ref: gitlab.Ptr("main")})
			} else {
				_, resp, err = tt.client.Projects.GetProject("group/app", nil)
			}
			if status(resp) != tt.want {
				t.Fatalf("status %d, want %d (err %v)", status(resp), tt.want, err)
			}
			if tt.want == http.StatusForbidden && !strings.Contains(err.Error(), "insufficient_scope") {
				t.Errorf("403 error %v does not name insufficient_scope", err)
			}
		})
	}
	// Bearer works like PRIVATE-TOKEN.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v4/projects/1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bearer: status %d", resp.StatusCode)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	_, ts, _ := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v4/projects/1/wikis", nil)
	req.Header.Set("PRIVATE-TOKEN", testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "404") {
		t.Errorf("status %d body %s", resp.StatusCode, b)
	}
}

func TestBranches(t *testing.T) {
	_, _, gl := newTestServer(t)
	b, resp, err := gl.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{Branch: gitlab.Ptr("feature"), Ref: gitlab.Ptr("main")})
	if err != nil || status(resp) != http.StatusCreated || b.Commit == nil || b.Commit.ID == "" {
		t.Fatalf("create: %+v %v", b, err)
	}
	_, resp, _ = gl.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{Branch: gitlab.Ptr("feature"), Ref: gitlab.Ptr("main")})
	if status(resp) != http.StatusConflict {
		t.Errorf("existing branch: status %d", status(resp))
	}
	got, _, err := gl.Branches.GetBranch("group/app", "feature")
	if err != nil || got.Commit.ID != b.Commit.ID {
		t.Errorf("get: %+v %v", got, err)
	}
	if _, err := gl.Branches.DeleteBranch("group/app", "feature"); err != nil {
		t.Fatal(err)
	}
	_, resp, _ = gl.Branches.GetBranch("group/app", "feature")
	if status(resp) != http.StatusNotFound {
		t.Errorf("deleted branch: status %d", status(resp))
	}
	resp, _ = gl.Branches.DeleteBranch("group/app", "feature")
	if status(resp) != http.StatusNotFound {
		t.Errorf("delete missing: status %d", status(resp))
	}
}

func act(a gitlab.FileActionValue, path, content string) *gitlab.CommitActionOptions {
	return &gitlab.CommitActionOptions{Action: gitlab.Ptr(a), FilePath: gitlab.Ptr(path), Content: gitlab.Ptr(content)}
}

func TestCommits(t *testing.T) {
	emu, _, gl := newTestServer(t)
	mainHead := emu.Branch("group/app", "main")
	c, resp, err := gl.Commits.CreateCommit("group/app", &gitlab.CreateCommitOptions{
		Branch: gitlab.Ptr("topic"), StartBranch: gitlab.Ptr("main"), CommitMessage: gitlab.Ptr("Pin image\n\nHydrafy-Digest: sha256:aa"),
		AuthorName: gitlab.Ptr("hydrafy"), AuthorEmail: gitlab.Ptr("hydrafy@example.com"),
		Actions: []*gitlab.CommitActionOptions{
			act(gitlab.FileUpdate, ".gitlab-ci.yml", "image: nixos/nix@sha256:aa\n"),
			act(gitlab.FileCreate, "new.txt", "x"),
			{Action: gitlab.Ptr(gitlab.FileMove), FilePath: gitlab.Ptr("ci/moved.yml"), PreviousPath: gitlab.Ptr("ci/build.yml")},
		},
	})
	if err != nil || status(resp) != http.StatusCreated {
		t.Fatalf("create commit: %v", err)
	}
	if diff := cmp.Diff([]string{mainHead}, c.ParentIDs); diff != "" {
		t.Errorf("parents (-want +got):\n%s", diff)
	}
	if c.AuthorEmail != "hydrafy@example.com" || c.CommitterEmail != "hydrafy-bot@example.com" || !strings.Contains(c.Message, "Hydrafy-Digest: sha256:aa") {
		t.Errorf("commit = %+v", c)
	}
	if got, _ := emu.File("group/app", "topic", "ci/moved.yml"); got != "build:\n  image: nixos/nix\n" {
		t.Errorf("moved file = %q", got)
	}
	got, _, err := gl.Commits.GetCommit("group/app", c.ID, nil)
	if err != nil || got.ID != c.ID || got.Title != "Pin image" {
		t.Errorf("get commit: %+v %v", got, err)
	}
	list, _, err := gl.Commits.ListCommits("group/app", &gitlab.ListCommitsOptions{RefName: gitlab.Ptr("topic")})
	if err != nil || len(list) != 2 || list[0].ID != c.ID {
		t.Errorf("list commits: %d %v", len(list), err)
	}

	bad := []struct {
		name string
		opt  gitlab.CreateCommitOptions
		want string
	}{
		{"bad action", gitlab.CreateCommitOptions{Actions: []*gitlab.CommitActionOptions{act("frobnicate", "a", "")}}, "does not have a valid value"},
		{"update missing", gitlab.CreateCommitOptions{Actions: []*gitlab.CommitActionOptions{act(gitlab.FileUpdate, "nope", "x")}}, "doesn't exist"},
		{"create existing", gitlab.CreateCommitOptions{Actions: []*gitlab.CommitActionOptions{act(gitlab.FileCreate, "new.txt", "x")}}, "already exists"},
		{"branch exists, other start", gitlab.CreateCommitOptions{StartBranch: gitlab.Ptr("main"), Actions: []*gitlab.CommitActionOptions{act(gitlab.FileCreate, "b", "x")}}, "already exists"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			opt := tt.opt
			opt.Branch, opt.CommitMessage = gitlab.Ptr("topic"), gitlab.Ptr("m")
			_, resp, err := gl.Commits.CreateCommit("group/app", &opt)
			if status(resp) != http.StatusBadRequest || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("status %d err %v, want 400 %q", status(resp), err, tt.want)
			}
		})
	}
	if emu.Branch("group/app", "topic") != c.ID {
		t.Error("a refused commit moved the branch")
	}

	// force restarts the branch from start_branch.
	f, _, err := gl.Commits.CreateCommit("group/app", &gitlab.CreateCommitOptions{
		Branch: gitlab.Ptr("topic"), StartBranch: gitlab.Ptr("main"), Force: gitlab.Ptr(true), CommitMessage: gitlab.Ptr("again"),
		Actions: []*gitlab.CommitActionOptions{act(gitlab.FileUpdate, ".gitlab-ci.yml", "image: nixos/nix@sha256:bb\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{mainHead}, f.ParentIDs); diff != "" {
		t.Errorf("forced parents (-want +got):\n%s", diff)
	}
	if _, err := emu.File("group/app", "topic", "new.txt"); err == nil {
		t.Error("force kept a file of the replaced commit")
	}
}

// hookSink records webhook requests.
type hookSink struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
	fail int
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail > 0 {
		h.fail--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.reqs = append(h.reqs, r)
	h.body = append(h.body, b)
}

func (h *hookSink) events(kind string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for i, r := range h.reqs {
		if r.Header.Get("X-Gitlab-Event") == kind {
			var m map[string]any
			_ = json.Unmarshal(h.body[i], &m)
			out = append(out, m)
		}
	}
	return out
}

func TestMergeRequestLifecycle(t *testing.T) {
	emu, _, gl := newTestServer(t)
	sink := &hookSink{fail: 1}
	hs := httptest.NewServer(sink)
	defer hs.Close()
	hk, _, err := gl.Projects.AddProjectHook("group/app", &gitlab.AddProjectHookOptions{
		URL: gitlab.Ptr(hs.URL), Token: gitlab.Ptr("s3cret"), PushEvents: gitlab.Ptr(true), MergeRequestsEvents: gitlab.Ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	hooks, _, err := gl.Projects.ListProjectHooks("group/app", nil)
	if err != nil || len(hooks) != 1 || hooks[0].ID != hk.ID || !hooks[0].MergeRequestsEvents {
		t.Fatalf("hooks %+v %v", hooks, err)
	}
	bot := emu.AddUser("alice", "Alice", "alice@example.com")

	if _, err := emu.Push("group/app", "topic", "alice", "change", map[string]string{"a.txt": "a\n"}); err != nil {
		t.Fatal(err)
	}
	mr, resp, err := gl.MergeRequests.CreateMergeRequest("group/app", &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("T"), Description: gitlab.Ptr("D"), SourceBranch: gitlab.Ptr("topic"), TargetBranch: gitlab.Ptr("main"),
		Labels: &gitlab.LabelOptions{"deps", "hydrafy"}, AssigneeIDs: &[]int64{bot}})
	if err != nil || status(resp) != http.StatusCreated {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gitlab.Labels{"deps", "hydrafy"}, mr.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if len(mr.Assignees) != 1 || mr.Assignees[0].Username != "alice" || mr.SHA != emu.Branch("group/app", "topic") {
		t.Errorf("mr = %+v", mr)
	}
	_, resp, _ = gl.MergeRequests.CreateMergeRequest("group/app", &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("T2"), SourceBranch: gitlab.Ptr("topic"), TargetBranch: gitlab.Ptr("main")})
	if status(resp) != http.StatusConflict {
		t.Errorf("duplicate MR: status %d", status(resp))
	}

	list := func(opt gitlab.ListProjectMergeRequestsOptions) int {
		l, _, err := gl.MergeRequests.ListProjectMergeRequests("group/app", &opt)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	counts := map[string][2]int{
		"opened":        {1, list(gitlab.ListProjectMergeRequestsOptions{State: gitlab.Ptr("opened")})},
		"merged":        {0, list(gitlab.ListProjectMergeRequestsOptions{State: gitlab.Ptr("merged")})},
		"source topic":  {1, list(gitlab.ListProjectMergeRequestsOptions{SourceBranch: gitlab.Ptr("topic")})},
		"source other":  {0, list(gitlab.ListProjectMergeRequestsOptions{SourceBranch: gitlab.Ptr("other")})},
		"label hydrafy": {1, list(gitlab.ListProjectMergeRequestsOptions{Labels: &gitlab.LabelOptions{"hydrafy"}})},
		"label other":   {0, list(gitlab.ListProjectMergeRequestsOptions{Labels: &gitlab.LabelOptions{"other"}})},
	}
	for name, c := range counts {
		if c[0] != c[1] {
			t.Errorf("list %s: %d MRs, want %d", name, c[1], c[0])
		}
	}

	up, _, err := gl.MergeRequests.UpdateMergeRequest("group/app", mr.IID, &gitlab.UpdateMergeRequestOptions{
		Title: gitlab.Ptr("T'"), Description: gitlab.Ptr("D'"), Labels: &gitlab.LabelOptions{"x"}})
	if err != nil || up.Title != "T'" || up.Description != "D'" || len(up.Labels) != 1 {
		t.Errorf("update: %+v %v", up, err)
	}
	if _, _, err := gl.Notes.CreateMergeRequestNote("group/app", mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("hello")}); err != nil {
		t.Fatal(err)
	}
	notes, _, err := gl.Notes.ListMergeRequestNotes("group/app", mr.IID, nil)
	if err != nil || len(notes) != 1 || notes[0].Body != "hello" {
		t.Errorf("notes %+v %v", notes, err)
	}

	merged, _, err := gl.MergeRequests.AcceptMergeRequest("group/app", mr.IID, nil)
	if err != nil || merged.State != "merged" || merged.MergeCommitSHA == "" {
		t.Fatalf("merge: %+v %v", merged, err)
	}
	if head := emu.Branch("group/app", "main"); head != merged.MergeCommitSHA {
		t.Errorf("main head %s, merge commit %s", head, merged.MergeCommitSHA)
	}
	if got, _ := emu.File("group/app", "main", "a.txt"); got != "a\n" {
		t.Errorf("merged file = %q", got)
	}
	_, resp, _ = gl.MergeRequests.AcceptMergeRequest("group/app", mr.IID, nil)
	if status(resp) != http.StatusMethodNotAllowed {
		t.Errorf("merge twice: status %d", status(resp))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitHooks(ctx); err != nil {
		t.Fatal(err)
	}
	var mergeEv map[string]any
	for _, ev := range sink.events("Merge Request Hook") {
		if attrs := ev["object_attributes"].(map[string]any); attrs["action"] == "merge" {
			mergeEv = ev
		}
	}
	if mergeEv == nil {
		t.Fatal("no merge event delivered")
	}
	attrs := mergeEv["object_attributes"].(map[string]any)
	want := map[string]any{"state": "merged", "target_branch": "main", "source_branch": "topic",
		"merge_commit_sha": merged.MergeCommitSHA, "iid": float64(mr.IID)}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("object_attributes.%s = %v, want %v", k, attrs[k], v)
		}
	}
	if mergeEv["project"].(map[string]any)["path_with_namespace"] != "group/app" {
		t.Errorf("project = %v", mergeEv["project"])
	}
	pushes := sink.events("Push Hook")
	if len(pushes) == 0 {
		t.Fatal("no push event delivered")
	}
	sink.mu.Lock()
	for _, r := range sink.reqs {
		if r.Header.Get("X-Gitlab-Token") != "s3cret" || r.Header.Get("X-Gitlab-Event-UUID") == "" || r.Header.Get("Idempotency-Key") == "" {
			t.Errorf("headers %v", r.Header)
		}
	}
	sink.mu.Unlock()
	retried := false
	for _, d := range emu.Deliveries() {
		if d.Attempts > 1 && d.OK() {
			retried = true
		}
	}
	if !retried {
		t.Error("the failed first delivery was not retried")
	}
}

func TestCloseAndAutoMerge(t *testing.T) {
	emu, _, gl := newTestServer(t)
	for _, b := range []string{"one", "two"} {
		if _, err := emu.Push("group/app", b, "root", b, map[string]string{b: b}); err != nil {
			t.Fatal(err)
		}
	}
	open := func(b string) *gitlab.MergeRequest {
		mr, _, err := gl.MergeRequests.CreateMergeRequest("group/app", &gitlab.CreateMergeRequestOptions{
			Title: gitlab.Ptr(b), SourceBranch: gitlab.Ptr(b), TargetBranch: gitlab.Ptr("main")})
		if err != nil {
			t.Fatal(err)
		}
		return mr
	}
	one, two := open("one"), open("two")
	closed, _, err := gl.MergeRequests.UpdateMergeRequest("group/app", one.IID, &gitlab.UpdateMergeRequestOptions{StateEvent: gitlab.Ptr("close")})
	if err != nil || closed.State != "closed" {
		t.Fatalf("close: %+v %v", closed, err)
	}

	pid, err := emu.SetPipeline("group/app", two.SHA, "running")
	if err != nil {
		t.Fatal(err)
	}
	pls, _, err := gl.MergeRequests.ListMergeRequestPipelines("group/app", two.IID, nil)
	if err != nil || len(pls) != 1 || pls[0].ID != pid || pls[0].SHA != two.SHA {
		t.Fatalf("MR pipelines %+v %v", pls, err)
	}
	byCommit, _, err := gl.Pipelines.ListProjectPipelines("group/app", &gitlab.ListProjectPipelinesOptions{SHA: gitlab.Ptr(two.SHA)})
	if err != nil || len(byCommit) != 1 {
		t.Fatalf("commit pipelines %+v %v", byCommit, err)
	}
	am, _, err := gl.MergeRequests.AcceptMergeRequest("group/app", two.IID, &gitlab.AcceptMergeRequestOptions{AutoMerge: gitlab.Ptr(true)})
	if err != nil || am.State != "opened" || !am.MergeWhenPipelineSucceeds {
		t.Fatalf("auto-merge: %+v %v", am, err)
	}
	if _, err := emu.SetPipeline("group/app", two.SHA, "success"); err != nil {
		t.Fatal(err)
	}
	got, _, err := gl.MergeRequests.GetMergeRequest("group/app", two.IID, nil)
	if err != nil || got.State != "merged" {
		t.Errorf("after pipeline success: %+v %v", got.State, err)
	}
}

func TestRunners(t *testing.T) {
	emu, _, gl := newTestServer(t)
	id := emu.AddRunner("host-1", "glrt-abc")
	resp, err := gl.Runners.VerifyRegisteredRunner(&gitlab.VerifyRegisteredRunnerOptions{Token: gitlab.Ptr("glrt-abc")})
	if err != nil || status(resp) != http.StatusOK {
		t.Fatalf("verify: %v", err)
	}
	resp, _ = gl.Runners.VerifyRegisteredRunner(&gitlab.VerifyRegisteredRunnerOptions{Token: gitlab.Ptr("bad")})
	if status(resp) != http.StatusForbidden {
		t.Errorf("verify bad token: status %d", status(resp))
	}
	job, err := emu.StartJob(id, "build")
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := gl.Runners.UpdateRunnerDetails(id, &gitlab.UpdateRunnerDetailsOptions{Paused: gitlab.Ptr(true)})
	if err != nil || !r.Paused {
		t.Fatalf("pause: %+v %v", r, err)
	}
	if _, err := emu.StartJob(id, "late"); err == nil {
		t.Error("a paused runner took a job")
	}
	running, _, err := gl.Runners.ListRunnerJobs(id, &gitlab.ListRunnerJobsOptions{Status: gitlab.Ptr("running")})
	if err != nil || len(running) != 1 || running[0].ID != job {
		t.Fatalf("running jobs %+v %v", running, err)
	}
	if err := emu.FinishJob(job, "success"); err != nil {
		t.Fatal(err)
	}
	running, _, _ = gl.Runners.ListRunnerJobs(id, &gitlab.ListRunnerJobsOptions{Status: gitlab.Ptr("running")})
	if len(running) != 0 {
		t.Errorf("%d running jobs after finish", len(running))
	}
	got, _, err := gl.Runners.GetRunnerDetails(id)
	if err != nil || !got.Paused {
		t.Errorf("get runner %+v %v", got, err)
	}
	_, resp, _ = gl.Runners.GetRunnerDetails(99)
	if status(resp) != http.StatusNotFound {
		t.Errorf("unknown runner: status %d", status(resp))
	}
}

func TestFaults(t *testing.T) {
	emu, _, gl := newTestServer(t)
	emu.FailNext(http.MethodGet, "projects/group/app", http.StatusBadGateway, 1)
	if _, _, err := gl.Projects.GetProject("group/app", nil); err != nil {
		t.Errorf("one 502 was not retried by the client: %v", err)
	}
	emu.FailNext("", "projects/group/app", http.StatusTooManyRequests, 100)
	_, resp, err := gl.Projects.GetProject("group/app", nil, gitlab.WithContext(context.Background()))
	if status(resp) != http.StatusTooManyRequests || err == nil {
		var ee *gitlab.ErrorResponse
		t.Errorf("status %d err %v (%v)", status(resp), err, errors.As(err, &ee))
	}
}

func mrOpts(src string) *gitlab.CreateMergeRequestOptions {
	return &gitlab.CreateMergeRequestOptions{Title: gitlab.Ptr("T " + src), SourceBranch: gitlab.Ptr(src), TargetBranch: gitlab.Ptr("main")}
}

func TestReadOnlyMember(t *testing.T) {
	emu, _, gl := newTestServer(t)
	if err := emu.ReadOnly("group/app", "hydrafy-bot"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gl.Projects.GetProject("group/app", nil); err != nil {
		t.Errorf("read: %v", err)
	}
	_, resp, _ := gl.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{Branch: gitlab.Ptr("x"), Ref: gitlab.Ptr("main")})
	if status(resp) != http.StatusForbidden {
		t.Errorf("write: status %d, want 403", status(resp))
	}
}

func TestHookPausedAfterFailures(t *testing.T) {
	emu, _, gl := newTestServer(t)
	sink := &hookSink{fail: 1 << 30}
	hs := httptest.NewServer(sink)
	defer hs.Close()
	if _, err := emu.AddHook("group/app", hs.URL, "tok"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		if _, err := emu.Push("group/app", "main", "root", "c", map[string]string{"f": string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
		if err := emu.WaitHooks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(emu.Deliveries()); n != 4 {
		t.Errorf("%d deliveries, want 4 before the hook is paused", n)
	}
	for _, d := range emu.Deliveries() {
		if d.OK() || d.Attempts != 4 {
			t.Errorf("delivery %+v", d)
		}
	}
	hooks, _, err := gl.Projects.ListProjectHooks("group/app", nil)
	if err != nil || len(hooks) != 1 || hooks[0].AlertStatus != "temporarily_disabled" || hooks[0].DisabledUntil == nil {
		t.Errorf("hooks %+v %v", hooks, err)
	}
}

func TestUnknownEndpointIsLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	emu := New(Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))})
	ts := httptest.NewServer(emu.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/v4/nonsense/here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(buf.String(), "/api/v4/nonsense/here") {
		t.Errorf("status %d, log %q", resp.StatusCode, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestPagination(t *testing.T) {
	emu, _, gl := newTestServer(t)
	for i := range 25 {
		if _, err := emu.Push("group/app", fmt.Sprintf("b%02d", i), "root", "c", map[string]string{"f": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	first, resp, err := gl.Branches.ListBranches("group/app", nil)
	if err != nil || len(first) != 20 || resp.TotalItems != 26 || resp.NextPage != 2 {
		t.Fatalf("page 1: %d items, total %d, next %d, %v", len(first), resp.TotalItems, resp.NextPage, err)
	}
	second, resp, err := gl.Branches.ListBranches("group/app", &gitlab.ListBranchesOptions{ListOptions: gitlab.ListOptions{Page: 2}})
	if err != nil || len(second) != 6 || resp.NextPage != 0 {
		t.Fatalf("page 2: %d items, next %d, %v", len(second), resp.NextPage, err)
	}
}
