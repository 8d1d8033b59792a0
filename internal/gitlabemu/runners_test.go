package gitlabemu

import (
	"net/http"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

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
