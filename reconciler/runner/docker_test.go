package runner

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

// engine emulates the Docker Engine API endpoints the docker control uses,
// for one container whose main process is a real stand-in runner: kill
// sends a real signal, wait waits for the real exit.
type engine struct {
	name       string
	args       []string // the container's command
	stopSignal string
	restart    string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	exitCode int
	calls    []string
}

func (e *engine) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{name}/json", e.known(e.inspect))
	mux.HandleFunc("POST /containers/{name}/kill", e.known(e.kill))
	mux.HandleFunc("POST /containers/{name}/wait", e.known(e.wait))
	mux.HandleFunc("POST /containers/{name}/start", e.known(e.start))
	return mux
}

// listen serves the API on a unix socket, as dockerd does.
func (e *engine) listen(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(e.handler())
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.running() {
			e.cmd.Process.Kill()
		}
	})
	return "unix://" + sock
}

// known records the call and passes it to h when it names the
// container; any other name is not found, as dockerd answers.
func (e *engine) known(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls = append(e.calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		e.mu.Unlock()
		if r.PathValue("name") != e.name {
			notFound(w, r.PathValue("name"))
			return
		}
		h(w, r)
	}
}

func notFound(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	json.NewEncoder(w).Encode(map[string]string{"message": "No such container: " + name})
}

// running reports whether the main process runs; e.mu must be held.
func (e *engine) running() bool {
	if e.cmd == nil {
		return false
	}
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

func (e *engine) inspect(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	status := "created"
	if e.running() {
		status = "running"
	} else if e.cmd != nil {
		status = "exited"
	}
	json.NewEncoder(w).Encode(map[string]any{
		"Id":         "4c9b2f3e",
		"Name":       "/" + e.name,
		"State":      map[string]any{"Status": status, "Running": status == "running", "ExitCode": e.exitCode},
		"Config":     map[string]any{"Image": "gitlab/gitlab-runner:latest", "StopSignal": e.stopSignal},
		"HostConfig": map[string]any{"RestartPolicy": map[string]any{"Name": e.restart, "MaximumRetryCount": 0}},
	})
}

func (e *engine) kill(w http.ResponseWriter, r *http.Request) {
	sig := map[string]syscall.Signal{"SIGQUIT": syscall.SIGQUIT, "SIGTERM": syscall.SIGTERM, "SIGKILL": syscall.SIGKILL, "": syscall.SIGKILL}[r.URL.Query().Get("signal")]
	if sig == 0 {
		http.Error(w, `{"message":"invalid signal"}`, http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running() {
		http.Error(w, `{"message":"container is not running"}`, http.StatusConflict)
		return
	}
	e.cmd.Process.Signal(sig)
	w.WriteHeader(http.StatusNoContent)
}

func (e *engine) wait(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	exited := e.exited
	e.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
		case <-r.Context().Done():
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"StatusCode": e.exitCode, "Error": nil})
}

func (e *engine) start(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running() {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	cmd := exec.Command(e.args[0], e.args[1:]...)
	if err := cmd.Start(); err != nil {
		http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusInternalServerError)
		return
	}
	e.cmd, e.exited = cmd, make(chan struct{})
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		e.mu.Lock()
		e.exitCode = code
		close(e.exited)
		e.mu.Unlock()
	}()
	w.WriteHeader(http.StatusNoContent)
}

func TestDockerControlDrainsTheStandin(t *testing.T) {
	f := newStandinFiles(t)
	e := &engine{
		name:       "gitlab-runner",
		args:       []string{os.Args[0], "-standin", "run", "-status", f.Status, "-store", f.Store, "-jobs=-1", "-job-duration=300ms"},
		stopSignal: "SIGQUIT",
		restart:    "always",
	}
	r := newRunner(t, Options{Control: "docker", Container: "gitlab-runner", DockerHost: e.listen(t)}, nil, nil)
	ctx := testContext(t)
	if up, err := r.Running(ctx); err != nil || up {
		t.Fatalf("Running = %v, %v before Start", up, err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatalf("second Start (304 from the engine): %v", err)
	}
	if up, err := r.Running(ctx); err != nil || !up {
		t.Fatalf("Running = %v, %v after Start", up, err)
	}
	if err := r.Preflight(ctx); err == nil || !strings.Contains(err.Error(), "no runner id") {
		t.Fatalf("Preflight without id = %v", err)
	}
	if err := r.ctl.preflight(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.Wait(t, "a running job", func(s standin.Status) bool { return s.JobsRunning == 1 })
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.ReadStatus(t)
	if after.PID != before.PID || after.State != standin.StateExited || after.JobsAborted != 0 || after.JobsDone <= before.JobsDone {
		t.Errorf("after Stop: %+v, want pid %d exited with its running job done", after, before.PID)
	}
	if !bigLockFree(t, f.Store) {
		t.Error("big-lock held after Stop")
	}
	if up, err := r.Running(ctx); err != nil || up {
		t.Errorf("Running = %v, %v after Stop", up, err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Errorf("Stop of a stopped container: %v", err)
	}
	e.mu.Lock()
	calls := strings.Join(e.calls, "\n")
	e.mu.Unlock()
	for _, want := range []string{"POST /containers/gitlab-runner/kill?signal=SIGQUIT", "POST /containers/gitlab-runner/wait?condition=not-running"} {
		if strings.Count(calls, want) != 1 {
			t.Errorf("want one %q in engine calls:\n%s", want, calls)
		}
	}
}

func TestDockerPreflight(t *testing.T) {
	tests := []struct {
		name, container, stopSignal, restart string
		wantErr                              string
	}{
		{"restarting container with SIGTERM stop signal", "gitlab-runner", "SIGTERM", "always", "--stop-signal SIGQUIT"},
		{"restart unless-stopped, default stop signal", "gitlab-runner", "", "unless-stopped", "would restart it"},
		{"restarting container with SIGQUIT stop signal", "gitlab-runner", "SIGQUIT", "always", ""},
		{"numeric stop signal", "gitlab-runner", "3", "on-failure", ""},
		{"no restart policy", "gitlab-runner", "", "no", ""},
		{"unknown container", "other", "", "no", "No such container: other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &engine{name: "gitlab-runner", stopSignal: tt.stopSignal, restart: tt.restart}
			r := newRunner(t, Options{Control: "docker", Container: tt.container, DockerHost: e.listen(t)}, nil, nil)
			err := r.ctl.preflight(testContext(t))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
