package runner

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

const runnerToken = "glrt-s3cr3t-t0ken-value"

func TestPauseAndUnpauseResolveTheIDOnce(t *testing.T) {
	emu, gl := newGitLab(t)
	emu.AddRunner("other", "glrt-other")
	id := emu.AddRunner("build host", runnerToken)
	log, logs := newLog()
	r := newRunner(t, Options{Control: "none", Token: runnerToken}, gl, log)
	ctx := testContext(t)
	if err := r.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	for _, paused := range []bool{true, false, true, false} {
		call := r.Unpause
		if paused {
			call = r.Pause
		}
		if err := call(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := emu.RunnerPaused(id)
		if err != nil {
			t.Fatal(err)
		}
		if got != paused {
			t.Fatalf("runner paused = %v, want %v", got, paused)
		}
	}
	if verifies := countRequests(emu, "POST", "runners/verify"); verifies != 1 {
		t.Errorf("%d POST /runners/verify, want 1 (the id is kept)", verifies)
	}
	if strings.Contains(logs.String(), runnerToken) {
		t.Errorf("runner token in the log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("runner_id=%d", id)) {
		t.Errorf("log does not name runner %d:\n%s", id, logs)
	}
}

func TestPauseWithConfiguredIDAndBadToken(t *testing.T) {
	emu, gl, id, _ := buildHost(t)
	ctx := testContext(t)

	r := newRunner(t, Options{Control: "none", ID: int(id)}, gl, nil)
	if err := r.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := emu.RunnerPaused(id); !p {
		t.Error("runner not paused")
	}

	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"wrong token", Options{Control: "none", Token: "glrt-wrong-value"}, "GitLab does not know it (403): check the runner's authentication token"},
		{"no id and no token", Options{Control: "none"}, "runner id unknown"},
		{"unknown id", Options{Control: "none", ID: 999}, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newRunner(t, tt.opts, gl, nil).Unpause(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "glrt-wrong-value") {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
	if p, _ := emu.RunnerPaused(id); !p {
		t.Error("a failed unpause of another runner unpaused this one")
	}

	r = newRunner(t, Options{Control: "none", ID: int(id)}, nil, nil)
	if err := r.Pause(ctx); !errors.Is(err, ErrNoGitLab) {
		t.Errorf("Pause without GitLab client: %v", err)
	}
}

// TestPauseWithReadOnlyToken: a token that may read the runner but not
// change it is told the scope it lacks, in the words the proposer uses.
func TestPauseWithReadOnlyToken(t *testing.T) {
	g := nixtest.NewGitLab(t, gitlabemu.Options{})
	id := g.Emu.AddRunner("build host", runnerToken)
	g.Token = "glpat-read-only"
	g.Emu.AddToken(g.Token, "watcher", "read_api")
	r := newRunner(t, Options{Control: "none", ID: int(id)}, g.Client(t), nil)
	if _, err := r.Paused(testContext(t)); err != nil {
		t.Fatalf("reading the runner with read_api: %v", err)
	}
	err := r.Pause(testContext(t))
	if want := fmt.Sprintf("pausing runner %d: the GitLab token lacks a scope (403 insufficient_scope): give it the manage_runner scope (or api)", id); err == nil || err.Error() != want {
		t.Errorf("pause with a read_api token: %v, want %q", err, want)
	}
}

func TestWaitIdleWaitsForRunningJobs(t *testing.T) {
	emu, gl, id, jobs := buildHost(t, "build", "test")
	j1, j2 := jobs[0], jobs[1]
	r := newRunner(t, Options{Control: "none", Token: runnerToken, DrainTimeout: time.Minute, PollInterval: 10 * time.Millisecond}, gl, nil)
	ctx := testContext(t)
	if err := r.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.StartJob(id, "late"); err == nil {
		t.Fatal("a paused runner took a new job")
	}
	done := make(chan error, 1)
	go func() { done <- r.WaitIdle(ctx) }()

	for _, j := range []int64{j1, j2} {
		// WaitIdle must still be waiting while a job runs.
		waitForListings(t, emu, id, 3)
		select {
		case err := <-done:
			t.Fatalf("WaitIdle returned %v while job %d runs", err, j)
		default:
		}
		if err := emu.FinishJob(j, "success"); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func countRequests(emu *gitlabemu.Server, method, path string) int {
	n := 0
	for _, req := range emu.Requests() {
		if req.Method == method && req.Path == path {
			n++
		}
	}
	return n
}

// waitForListings waits until the runner's running jobs have been listed n
// more times.
func waitForListings(t *testing.T, emu *gitlabemu.Server, id int64, n int) {
	t.Helper()
	path := fmt.Sprintf("runners/%d/jobs", id)
	start := countRequests(emu, "GET", path)
	deadline := time.Now().Add(15 * time.Second)
	for countRequests(emu, "GET", path) < start+n {
		if time.Now().After(deadline) {
			t.Fatalf("jobs of runner %d not listed %d more times", id, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWaitIdleDrainTimeoutNamesTheJobs(t *testing.T) {
	_, gl, id, jobs := buildHost(t, "build-cuda")
	r := newRunner(t, Options{Control: "none", ID: int(id), DrainTimeout: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond}, gl, nil)
	err := r.WaitIdle(testContext(t))
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("err = %v, want ErrDrainTimeout", err)
	}
	if want := fmt.Sprintf("job %d build-cuda", jobs[0]); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
}

// TestWaitIdleReadsRunnerMetrics: GitLab lists no job (it may lag), but the
// runner's own gitlab_runner_jobs gauge shows one; WaitIdle waits for it.
func TestWaitIdleReadsRunnerMetrics(t *testing.T) {
	_, gl, id, _ := buildHost(t)
	f := newStandinFiles(t)
	if err := os.WriteFile(f.Config, []byte("listen_address = \"127.0.0.1:0\"\n[[runners]]\n  name = \"nix\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := newRunner(t, Options{Control: "command", StopCommand: f.StopArgs(),
		StartCommand: f.StartArgs("-jobs=1", "-job-duration=3s")}, nil, nil)
	ctx := testContext(t)
	if err := start.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The one job starts with the process and runs for 3 s.
	st := f.Wait(t, "its metrics server and its job", func(s standin.Status) bool { return s.MetricsAddr != "" && s.JobsRunning == 1 })
	metrics := "http://" + st.MetricsAddr + "/metrics"

	short := newRunner(t, Options{Control: "none", ID: int(id), MetricsURL: metrics, DrainTimeout: 200 * time.Millisecond, PollInterval: 10 * time.Millisecond}, gl, nil)
	err := short.WaitIdle(ctx)
	if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "1 jobs by the runner's gitlab_runner_jobs metric") {
		t.Fatalf("err = %v, want a drain timeout naming the metric", err)
	}

	r := newRunner(t, Options{Control: "none", ID: int(id), MetricsURL: metrics, DrainTimeout: time.Minute, PollInterval: 10 * time.Millisecond}, gl, nil)
	if err := r.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.ReadStatus(t); st.JobsDone != 1 || st.JobsRunning != 0 {
		t.Errorf("WaitIdle returned with status %+v, want the job done", st)
	}
	if err := start.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSumGauge(t *testing.T) {
	text := `# HELP gitlab_runner_jobs The current number of running builds.
# TYPE gitlab_runner_jobs gauge
gitlab_runner_jobs{executor_stage="docker_run",runner="abc",stage="step_script",state="running",system_id="s_1"} 2
gitlab_runner_jobs{executor_stage="docker_pull",runner="def",stage="prepare",state="running",system_id="s_1"} 1
gitlab_runner_jobs_total{runner="abc"} 99
gitlab_runner_jobs_running_total 7
`
	n, err := sumGauge(bufio.NewScanner(strings.NewReader(text)), jobsMetric)
	if err != nil || n != 3 {
		t.Errorf("sumGauge = %d, %v; want 3", n, err)
	}
	if _, err := sumGauge(bufio.NewScanner(strings.NewReader("gitlab_runner_jobs{a=\"b\"} x\n")), jobsMetric); err == nil {
		t.Error("malformed sample accepted")
	}
}

func TestRunningJobsFollowsPages(t *testing.T) {
	const n = 105 // more than one page of 100
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("job-%d", i))
	}
	emu, gl, id, _ := buildHost(t, names...)
	r := newRunner(t, Options{Control: "none", ID: int(id)}, gl, nil)
	busy, err := r.busy(testContext(t), int(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(busy) != n {
		t.Errorf("%d running jobs found, want %d", len(busy), n)
	}
	if pages := countRequests(emu, "GET", fmt.Sprintf("runners/%d/jobs", id)); pages != 2 {
		t.Errorf("%d list requests, want 2 pages", pages)
	}
}
