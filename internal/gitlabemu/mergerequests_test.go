package gitlabemu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

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
	retriedKey := false
	for _, r := range sink.reqs {
		if len(sink.failedKeys) == 1 && r.Header.Get("Idempotency-Key") == sink.failedKeys[0] {
			retriedKey = true
		}
		if r.Header.Get("X-Gitlab-Token") != "s3cret" || r.Header.Get("X-Gitlab-Event-UUID") == "" || r.Header.Get("Idempotency-Key") == "" {
			t.Errorf("headers %v", r.Header)
		}
	}
	sink.mu.Unlock()
	if !retriedKey {
		t.Error("the retry of the refused delivery did not carry the same Idempotency-Key")
	}
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

func TestAutoMergeWithFinishedPipeline(t *testing.T) {
	tests := []struct {
		pipeline  string
		wantCode  int
		wantState string
	}{
		{"success", http.StatusOK, "merged"},
		{"failed", http.StatusMethodNotAllowed, "opened"},
	}
	for _, tt := range tests {
		t.Run(tt.pipeline, func(t *testing.T) {
			emu, _, gl := newTestServer(t)
			sha, err := emu.Push("group/app", "topic", "root", "c", map[string]string{"f": "x"})
			if err != nil {
				t.Fatal(err)
			}
			mr, _, err := gl.MergeRequests.CreateMergeRequest("group/app", mrOpts("topic"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := emu.SetPipeline("group/app", sha, tt.pipeline); err != nil {
				t.Fatal(err)
			}
			_, resp, _ := gl.MergeRequests.AcceptMergeRequest("group/app", mr.IID, &gitlab.AcceptMergeRequestOptions{AutoMerge: gitlab.Ptr(true)})
			if status(resp) != tt.wantCode {
				t.Errorf("status %d, want %d", status(resp), tt.wantCode)
			}
			if got := emu.MergeRequests("group/app")[0].State; got != tt.wantState {
				t.Errorf("state %s, want %s", got, tt.wantState)
			}
		})
	}
}
