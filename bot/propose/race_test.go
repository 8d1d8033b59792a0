package propose

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
)

const secondBotToken = "glpat-second-bot"

// twoBots are two proposers on the same projects, each with its own token,
// as two hosts with the bot enabled by mistake would run them. The second
// reaches GitLab through gate, which can hold its merge request creates.
type twoBots struct {
	e      *env
	a, b   *Proposer
	cfg    []config.Project
	holdMu sync.Mutex
	hold   chan struct{} // non-nil: the second bot's creates wait for it
	held   chan string   // told each create that waits
}

func newTwoBots(t *testing.T, projects ...string) *twoBots {
	t.Helper()
	files := map[string]map[string]string{}
	tb := &twoBots{held: make(chan string, 16)}
	for _, p := range projects {
		files[p] = map[string]string{".gitlab-ci.yml": "build:\n  image: nixos/nix:latest\ntest:\n  image: nixos/nix\n"}
		tb.cfg = append(tb.cfg, config.Project{Path: p, Files: []string{".gitlab-ci.yml"}})
	}
	tb.e = newEnv(t, files)
	tb.e.emu.AddToken(secondBotToken, "hydrafy-bot-2")
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/merge_requests") {
			tb.holdMu.Lock()
			hold := tb.hold
			tb.holdMu.Unlock()
			if hold != nil {
				tb.held <- r.URL.Path
				<-hold
			}
		}
		tb.e.emu.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)
	tb.a = New(tb.e.gl, Options{Projects: tb.cfg}, nil)
	tb.b = New(client(t, gate.URL, secondBotToken), Options{Projects: tb.cfg}, nil)
	return tb
}

// check: every project has exactly one open merge request, from the
// proposal branch, pinning d; no pass failed. It returns the IIDs.
func (tb *twoBots) check(t *testing.T, d string, reps ...Report) map[string]int64 {
	t.Helper()
	for _, rep := range reps {
		for _, pr := range rep.Projects {
			if pr.Action == Failed || pr.Err != nil {
				t.Errorf("%s: %s", pr.Path, pr)
			}
		}
	}
	iids := map[string]int64{}
	for _, p := range tb.cfg {
		open := tb.e.openMRs(p.Path)
		if len(open) != 1 {
			t.Fatalf("%s has %d open merge requests, want 1: %+v", p.Path, len(open), open)
		}
		if !strings.Contains(open[0].Description, d) || open[0].SourceBranch != BranchName("hydrafy/", "nixos/nix") {
			t.Errorf("%s !%d does not propose %s from the proposal branch: %+v", p.Path, open[0].IID, d, open[0])
		}
		tb.e.checkPinned(t, p.Path, BranchName("hydrafy/", "nixos/nix"), p.Files, d)
		iids[p.Path] = open[0].IID
	}
	return iids
}

// TestTwoBotsCreateRace: the second bot surveys, pushes and is about to
// open the merge request when the first bot's whole pass runs and opens
// it. GitLab answers the second bot's create with 409; it adopts the first
// bot's merge request and updates it in place: one merge request per
// project.
func TestTwoBotsCreateRace(t *testing.T) {
	tb := newTwoBots(t, "g/a", "g/b")
	tb.hold = make(chan struct{})
	done := make(chan Report)
	go func() {
		rep, _, err := tb.b.Pass(context.Background(), target('1'), State{})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	<-tb.held // the second bot waits at its first create
	repA, _, err := tb.a.Pass(context.Background(), target('1'), State{})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(repA); got["g/a"] != Opened || got["g/b"] != Opened {
		t.Fatalf("first bot: %v, want both opened", got)
	}
	tb.holdMu.Lock()
	close(tb.hold)
	tb.hold = nil
	tb.holdMu.Unlock()
	repB := <-done
	iids := tb.check(t, digest('1'), repA, repB)
	for _, pr := range repB.Projects {
		if pr.Action != Updated && pr.Action != Unchanged || int64(pr.MR) != iids[pr.Path] {
			t.Errorf("second bot in %s: %s, want the first bot's !%d updated or unchanged", pr.Path, pr, iids[pr.Path])
		}
	}
	var conflicts int
	for _, r := range tb.e.emu.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/merge_requests") && r.Status == http.StatusConflict {
			conflicts++
		}
	}
	if conflicts < 1 {
		t.Errorf("no create answered 409: the race was not run")
	}
}

// TestTwoBotsRacing: two bots run their passes at the same time, round
// after round, each round with a newer digest. Whatever the interleaving,
// each project ends every round with one open merge request, the same one
// from the first round on, pinning the round's digest.
func TestTwoBotsRacing(t *testing.T) {
	tb := newTwoBots(t, "g/a", "g/b", "g/c")
	var first map[string]int64
	stA, stB := State{}, State{}
	for round, c := range []byte("123456789") {
		var wg sync.WaitGroup
		var repA, repB Report
		var errA, errB error
		wg.Add(2)
		go func() { defer wg.Done(); repA, stA, errA = tb.a.Pass(context.Background(), target(c), stA) }()
		go func() { defer wg.Done(); repB, stB, errB = tb.b.Pass(context.Background(), target(c), stB) }()
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("round %d: %v, %v", round, errA, errB)
		}
		iids := tb.check(t, digest(c), repA, repB)
		if first == nil {
			first = iids
		} else if fmt.Sprint(iids) != fmt.Sprint(first) {
			t.Errorf("round %d: merge requests %v, want %v updated in place", round, iids, first)
		}
	}
}
