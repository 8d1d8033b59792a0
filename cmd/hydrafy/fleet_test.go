package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

const (
	fleetBotToken = "glpat-fleet-bot" // api: branches and merge requests
	fleetSecret   = "fleet-webhook-secret"
	fleetResync   = "fleet-resync-token"
)

var fleetProjects = []string{"group/app", "group/infra"}

// fleetHost is one runner host of the fleet: its live store, its stand-in
// runner and GitLab runner, its `hydrafy serve` process and config.
type fleetHost struct {
	name     string
	bot      bool
	webhooks bool
	dir      string
	store    string
	runner   *nixtest.Standin
	runnerID int64
	token    string // its own GitLab token
	addr     string // fixed across restarts, so the hooks stay valid
	cmd      *exec.Cmd
	exited   chan error
}

func (h *fleetHost) url() string { return "http://" + h.addr }

// config is the host's hydrafy.toml; resync is its reconcile.schedule.
func (h *fleetHost) config(gitlabURL, image, resync string) string {
	list := func(v []string) string { b, _ := json.Marshal(v); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = %q\nstate_dir = %q\nwebhooks = %t\n\n", h.addr, filepath.Join(h.dir, "state"), h.webhooks)
	fmt.Fprintf(&b, "[gitlab]\nurl = %q\n\n[bot]\nenabled = %t\n\n", gitlabURL, h.bot)
	fmt.Fprintf(&b, "[watch]\nimage = %q\ntag = \"latest\"\nsettle = \"0s\"\nschedule = \"@every 1s\"\n\n", image)
	for _, p := range fleetProjects {
		fmt.Fprintf(&b, "[[projects]]\npath = %q\n\n", p)
	}
	fmt.Fprintf(&b, "[store]\ndir = %q\nplatform = \"linux/amd64\"\n\n", h.store)
	fmt.Fprintf(&b, "[runner]\ncontrol = \"command\"\nstop_command = %s\nstart_command = %s\nconfig_file = %q\nid = %d\ndrain_timeout = \"30s\"\npin_image = true\n\n",
		list(h.runner.StopArgs()), list(h.runner.StartArgs(standinFlags...)), h.runner.Config, h.runnerID)
	// A short pace: the hosts' passes follow each other within seconds.
	fmt.Fprintf(&b, "[reconcile]\nschedule = %q\nmin_interval = \"200ms\"\n", resync)
	return b.String()
}

// start runs `hydrafy serve` for the host as a process of its own, with
// its secrets in the environment (a poll-only host gets no webhook
// secret), and waits until it answers.
func (h *fleetHost) start(t *testing.T) {
	t.Helper()
	env := []string{"HYDRAFY_GITLAB_TOKEN=" + h.token, "HYDRAFY_RESYNC_TOKEN=" + fleetResync}
	if h.webhooks {
		env = append(env, "HYDRAFY_WEBHOOK_SECRET="+fleetSecret)
	}
	cmd := nixtest.Hydrafy([]string{"serve", "--config", filepath.Join(h.dir, "hydrafy.toml")}, env...)
	log, err := os.OpenFile(filepath.Join(h.dir, "hydrafy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.cmd, h.exited = cmd, make(chan error, 1)
	go func() { h.exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(h.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-h.exited:
			t.Fatalf("%s: hydrafy serve exited: %v\n%s", h.name, err, h.log(t))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: hydrafy serve never answered\n%s", h.name, h.log(t))
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (h *fleetHost) stop(t *testing.T) {
	t.Helper()
	if h.cmd == nil {
		return
	}
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.exited:
		if err != nil {
			t.Errorf("%s: hydrafy serve exited with %v\n%s", h.name, err, h.log(t))
		}
	case <-time.After(30 * time.Second):
		h.cmd.Process.Kill()
		t.Errorf("%s: hydrafy serve did not stop on SIGTERM", h.name)
	}
	h.cmd = nil
}

func (h *fleetHost) log(t *testing.T) string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "hydrafy.log"))
	return string(b)
}

// fleetStatus is the part of GET /status the fleet test reads.
type fleetStatus struct {
	statusJSON
	Role     string `json:"role"`
	Webhooks bool   `json:"webhooks"`
	Watch    struct {
		Error  string `json:"error"`
		Result *struct {
			Digest        string `json:"digest"`
			MergeRequests []struct {
				Project string `json:"project"`
				IID     int    `json:"iid"`
				Action  string `json:"action"`
			} `json:"merge_requests"`
		} `json:"result"`
	} `json:"watch"`
}

func (h *fleetHost) status(t *testing.T) fleetStatus {
	t.Helper()
	var s fleetStatus
	if err := json.Unmarshal([]byte(httpGet(t, h.url()+"/status")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitSeeded waits until the host has seeded digest, pins it in its
// runner's config.toml and runs nothing, and returns its status.
func (h *fleetHost) waitSeeded(t *testing.T, repo, digest string) fleetStatus {
	t.Helper()
	want := repo + "@" + digest
	var st fleetStatus
	deadline := time.Now().Add(60 * time.Second)
	for {
		st = h.status(t)
		seeded := slices.ContainsFunc(st.Seeded, func(s reconciler.Seeded) bool { return s.Digest == digest })
		cfg, _ := os.ReadFile(h.runner.Config)
		if seeded && strings.Contains(string(cfg), `image = "`+want+`"`) && st.Current == nil && !st.Queued && h.persisted(t, st.Last) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never seeded and pinned %s; config.toml:\n%s\nlog:\n%s", h.name, digest, cfg, h.log(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runs returns the host's last passes as its state file keeps them (more
// than /status lists: the poll-only host passes every second).
func (h *fleetHost) runs(t *testing.T) []reconciler.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "state", "reconciler.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no pass has written it yet
	}
	if err != nil {
		t.Fatal(err)
	}
	var st reconciler.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Runs
}

// persisted reports whether the state file holds the pass last (/status
// shows a pass finished a moment before its report is written).
func (h *fleetHost) persisted(t *testing.T, last *reconciler.Report) bool {
	return last != nil && slices.ContainsFunc(h.runs(t), func(r reconciler.Report) bool { return r.ID == last.ID })
}

// pinnedBy returns the reasons of the host's last pass that pinned
// config.toml to ref.
func pinnedBy(runs []reconciler.Report, ref string) string {
	for _, r := range slices.Backward(runs) {
		if r.Changed && r.Image == ref {
			return strings.Join(r.Reasons, "; ")
		}
	}
	return ""
}

// seededBy returns the reasons of the host's pass that seeded digest.
func seededBy(runs []reconciler.Report, digest string) string {
	for _, r := range runs {
		if slices.Contains(r.Seeded, digest) {
			return strings.Join(r.Reasons, "; ")
		}
	}
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFleet is a fleet of three runner hosts against one GitLab, on
// loopback: real `hydrafy serve` processes, real stores checked by Nix,
// stand-in runners. Host a runs the bot and takes webhooks; host b takes
// webhooks; host c is poll-only (no webhook secret, no hook: its resync
// schedule). Each reconciles with its own token, and the reconcilers' have
// only read_api and manage_runner.
//
// Round one: a new digest → one merge request per project → both merged →
// every host ends with the digest seeded and its runner's config.toml
// pinned: a and b by their webhooks, c by its resync. Round two: host b is
// stopped while the next digest is proposed and merged; it catches up when
// it starts again.
func TestFleet(t *testing.T) {
	reg := nixtest.Registry(t)
	relA := nixtest.PushRelease(t, reg, "2.24.9", "latest")
	relB := nixtest.PushRelease(t, reg, "2.25.0")
	relC := nixtest.PushRelease(t, reg, "2.26.0")
	repo := reg + "/nixos/nix"

	gts := nixtest.NewGitLab(t, gitlabemu.Options{HookBackoff: 10 * time.Millisecond})
	emu := gts.Emu
	emu.AddToken(fleetBotToken, "hydrafy-bot")
	emu.AddUser("alice", "Alice", "alice@example.com")
	for _, p := range fleetProjects {
		gts.Project(t, p, map[string]string{".gitlab-ci.yml": "build:\n  image: " + repo + "@" + relA.Digest + "\n  script: [nix build]\n"})
	}

	hosts := []*fleetHost{
		{name: "a", bot: true, webhooks: true, token: fleetBotToken},
		{name: "b", webhooks: true, token: "glpat-fleet-b"},
		{name: "c", token: "glpat-fleet-c"},
	}
	for _, h := range hosts {
		if !h.bot {
			emu.AddToken(h.token, "reconciler-"+h.name, "read_api", "manage_runner")
		}
		h.dir = t.TempDir()
		h.store = filepath.Join(h.dir, "store")
		h.addr = freeAddr(t)
		h.runnerID = emu.AddRunner("nix host "+h.name, "glrt-fleet-"+h.name)
		seedStore(t, repo+"@"+relA.Digest, h.store)
		h.runner = newStandin(t, h.dir, h.store)
		h.runner.Start(t, standinFlags...)
		resync := "@every 24h" // webhooks do the work
		if !h.webhooks {
			resync = "@every 1s"
		}
		if err := os.WriteFile(filepath.Join(h.dir, "hydrafy.toml"), []byte(h.config(gts.URL, repo, resync)), 0o644); err != nil {
			t.Fatal(err)
		}
		h.start(t)
		t.Cleanup(func() {
			h.stop(t)
			if l := h.log(t); strings.Contains(l, fleetSecret) || strings.Contains(l, fleetBotToken) || strings.Contains(l, h.token) {
				t.Errorf("%s: a secret reached the log", h.name)
			}
		})
		if h.webhooks {
			for _, p := range fleetProjects {
				if _, err := emu.AddHook(p, h.url()+"/webhooks/gitlab", fleetSecret); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, h := range hosts {
		st := h.waitSeeded(t, repo, relA.Digest)
		if wantRole := map[bool]string{true: "bot+reconciler", false: "reconciler"}[h.bot]; st.Role != wantRole || st.Webhooks != h.webhooks {
			t.Errorf("%s: /status role %q webhooks %v, want %q %v", h.name, st.Role, st.Webhooks, wantRole, h.webhooks)
		}
	}
	// The poll-only host has no webhook route.
	resp, err := http.Post(hosts[2].url()+"/webhooks/gitlab", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("poll-only host answered /webhooks/gitlab with %d, want 404", resp.StatusCode)
	}

	// proposeAndMerge publishes rel as latest, waits for the bot's merge
	// request in each project and for the hosts in ahead to have seeded it
	// (as the merge requests' pipelines need), and merges them all.
	proposeAndMerge := func(rel nixtest.Release, ahead ...*fleetHost) {
		t.Helper()
		nixtest.PushIndex(t, repo+":latest", rel.Index)
		var iids map[string]int64
		nixtest.WaitFor(t, "one merge request per project pinning "+rel.Digest, func() bool {
			iids = map[string]int64{}
			for _, p := range fleetProjects {
				for _, mr := range emu.MergeRequests(p) {
					if mr.State == "opened" && strings.Contains(mr.Description, rel.Digest) {
						iids[p] = mr.IID
					}
				}
			}
			return len(iids) == len(fleetProjects)
		})
		// The bot's /status says what it proposed once its pass ended.
		var st fleetStatus
		nixtest.WaitFor(t, "the bot's /status to report the proposal of "+rel.Digest, func() bool {
			st = hosts[0].status(t)
			return st.Watch.Result != nil && st.Watch.Result.Digest == rel.Digest && len(st.Watch.Result.MergeRequests) == len(fleetProjects)
		})
		for _, mr := range st.Watch.Result.MergeRequests {
			if int64(mr.IID) != iids[mr.Project] || mr.Action != "opened" && mr.Action != "updated" && mr.Action != "unchanged" {
				t.Errorf("bot's /status: %+v, want !%d of %s", mr, iids[mr.Project], mr.Project)
			}
		}
		for _, h := range ahead {
			nixtest.WaitFor(t, h.name+" to seed "+rel.Digest+" before the merge", func() bool {
				return slices.ContainsFunc(h.status(t).Seeded, func(s reconciler.Seeded) bool { return s.Digest == rel.Digest })
			})
		}
		for _, p := range fleetProjects {
			if n := len(openMRs(emu, p)); n != 1 {
				t.Errorf("%s has %d open merge requests, want 1", p, n)
			}
			if _, err := emu.Merge(p, iids[p], "alice"); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Round one: every host is up; host b seeds on the proposal push.
	proposeAndMerge(relB, hosts[1])
	for _, h := range hosts {
		h.waitSeeded(t, repo, relB.Digest)
		runs := h.runs(t)
		by := pinnedBy(runs, repo+"@"+relB.Digest)
		want := "webhook: "
		if !h.webhooks {
			want = "periodic"
		}
		if !strings.HasPrefix(by, want) {
			t.Errorf("%s pinned %s by %q, want %s…", h.name, relB.Digest, by, want)
		}
		// The digest was seeded ahead of the merge, for the merge
		// requests' pipelines: by the bot before it proposed, by the push
		// to the proposal branch, by the resync.
		wantSeed := map[string]string{"a": "proposal: seed ", "b": "webhook: push to proposal branch ", "c": "periodic"}[h.name]
		if by := seededBy(runs, relB.Digest); !strings.HasPrefix(by, wantSeed) {
			t.Errorf("%s seeded %s by %q, want %s…", h.name, relB.Digest, by, wantSeed)
		}
		checkStore(t, h, relA, relB)
		if s, err := standin.ReadStatus(h.runner.Status); err != nil || !standin.Alive(s.PID) || s.State != standin.StateRunning {
			t.Errorf("%s: runner not running: %+v %v", h.name, s, err)
		}
		if paused, err := emu.RunnerPaused(h.runnerID); err != nil || paused {
			t.Errorf("%s: runner paused = %v, %v", h.name, paused, err)
		}
	}

	// Round two: host b is down while the next digest is proposed and
	// merged; its webhooks fail; it catches up when it starts.
	b := hosts[1]
	b.stop(t)
	proposeAndMerge(relC)
	for _, h := range []*fleetHost{hosts[0], hosts[2]} {
		h.waitSeeded(t, repo, relC.Digest)
		checkStore(t, h, relA, relB, relC)
	}
	if err := emu.WaitHooks(t.Context()); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, d := range emu.Deliveries() {
		if strings.HasPrefix(d.URL, b.url()) && !d.OK() {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no delivery to the stopped host failed: it was not down during the merge")
	}
	b.start(t)
	st := b.waitSeeded(t, repo, relC.Digest)
	if by := pinnedBy(st.Recent, repo+"@"+relC.Digest); !strings.HasPrefix(by, "startup") {
		t.Errorf("b pinned %s by %q, want its start-up pass", relC.Digest, by)
	}
	checkStore(t, b, relA, relB, relC)
}

// checkStore checks with Nix that the host's live store holds exactly the
// releases' paths: every one seeded, none lost.
func checkStore(t *testing.T, h *fleetHost, rels ...nixtest.Release) {
	t.Helper()
	var want []string
	for _, r := range rels {
		want = nixtest.Union(want, r.Paths)
	}
	if diff := cmp.Diff(want, nixtest.Verify(t, h.store)); diff != "" {
		t.Errorf("%s: live store paths (-want +got):\n%s", h.name, diff)
	}
}

func openMRs(emu *gitlabemu.Server, project string) []gitlabemu.MR {
	var out []gitlabemu.MR
	for _, mr := range emu.MergeRequests(project) {
		if mr.State == "opened" {
			out = append(out, mr)
		}
	}
	return out
}
