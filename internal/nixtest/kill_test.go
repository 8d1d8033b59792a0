package nixtest_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestMain plays the children of the kill helper's tests: "steps" reaches
// steps a, b, a, b, … through nixtest.KillHook and writes each one to a
// file; "hang" writes a mark and sleeps.
func TestMain(m *testing.M) {
	switch nixtest.Child() {
	case "steps":
		hook := nixtest.KillHook()
		f, err := os.OpenFile(os.Getenv("STEPS_FILE"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			os.Exit(3)
		}
		for i := range 6 {
			step := string(rune('a' + i%2))
			fmt.Fprintln(f, step)
			if hook != nil {
				hook(step)
			}
		}
		os.Exit(0)
	case "hang":
		os.WriteFile(os.Getenv("MARK"), nil, 0o644)
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKillAtStep(t *testing.T) {
	for _, tc := range []struct {
		point  nixtest.KillPoint
		killed bool
		steps  int // steps reached, the fatal one included
	}{
		{nixtest.KillPoint{}, false, 6},
		{nixtest.KillPoint{Step: "a"}, true, 1},
		{nixtest.KillPoint{Step: "b", N: 2}, true, 4},
		{nixtest.KillPoint{Step: "b", N: 4}, false, 6},
		{nixtest.At("b:3"), true, 6},
		{nixtest.KillPoint{Step: "c"}, false, 6},
	} {
		t.Run(tc.point.String(), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "steps")
			killed := nixtest.Kill(t, nixtest.Command("steps", "STEPS_FILE="+file), tc.point)
			b, _ := os.ReadFile(file)
			if n := len(b) / 2; killed != tc.killed || n != tc.steps {
				t.Errorf("killed %v after %d steps, want %v after %d", killed, n, tc.killed, tc.steps)
			}
		})
	}
}

func TestKillAtMarkAndAfter(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	if !nixtest.Kill(t, nixtest.Command("hang", "MARK="+mark), nixtest.KillPoint{Mark: mark}) {
		t.Error("a child waiting at its mark was not killed")
	}
	if !nixtest.Kill(t, nixtest.Command("hang", "MARK="+mark+"2"), nixtest.KillPoint{After: 200 * time.Millisecond}) {
		t.Error("a hanging child was not killed after its delay")
	}
}

// TestCrash: every point runs a fresh process; check sees each outcome.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	var got []bool
	nixtest.Crash(t, []nixtest.KillPoint{nixtest.At("a:2"), {}, nixtest.At("b")}, func() *exec.Cmd {
		return nixtest.Command("steps", "STEPS_FILE="+filepath.Join(dir, fmt.Sprint(len(got))))
	}, func(_ nixtest.KillPoint, killed bool) { got = append(got, killed) })
	if fmt.Sprint(got) != "[true false true]" {
		t.Errorf("killed %v, want [true false true]", got)
	}
}

// TestRandomKillsReplay: one seed, one set of kill points, each within the span.
func TestRandomKillsReplay(t *testing.T) {
	a, b := nixtest.RandomKills(42, time.Second, 5), nixtest.RandomKills(42, time.Second, 5)
	for i := range a {
		if a[i] != b[i] || a[i].After <= 0 || a[i].After > time.Second {
			t.Errorf("point %d: %v and %v from one seed, want equal and within 1s", i, a[i], b[i])
		}
	}
	if c := nixtest.RandomKills(43, time.Second, 5); c[0] == a[0] && c[1] == a[1] {
		t.Error("another seed drew the same points")
	}
}

// TestFailingRegistry: the first n requests of a kind are refused with the
// code and Retry-After, then the registry answers; requests are counted.
func TestFailingRegistry(t *testing.T) {
	reg := nixtest.NewReg(t)
	d := reg.PushIndex(t, "latest", nixtest.RandomIndex(t, time.Unix(0, 0), "2.24.9", "linux/amd64"))
	var refused nixtest.Counter
	reg.Intercept(nixtest.Failing("manifests", 2, http.StatusTooManyRequests, "7", &refused))
	reg.Requests()
	url := "http://" + reg.Host + "/v2/nixos/nix/manifests/" + d
	for i, want := range []int{429, 429, 200} {
		resp, err := http.Head(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == 429) != (resp.Header.Get("Retry-After") == "7") {
			t.Errorf("request %d: %d (Retry-After %q), want %d", i, resp.StatusCode, resp.Header.Get("Retry-After"), want)
		}
	}
	if refused.Load() != 2 {
		t.Errorf("refused %d, want 2", refused.Load())
	}
	if got := reg.Requests(); got["HEAD manifests"] != 3 || len(got) != 1 {
		t.Errorf("requests %v, want 3 manifest HEADs", got)
	}
}
