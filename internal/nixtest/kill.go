package nixtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of a test binary re-executed by Command.
const (
	childEnv = "HYDRAFY_TEST_CHILD"   // the role it plays instead of running the tests
	killEnv  = "HYDRAFY_TEST_KILL_AT" // "step:n": it kills itself the nth time it reaches step
	seedEnv  = "HYDRAFY_TEST_SEED"    // replays the random kill points of a failed run
)

// Child returns the role this test binary was re-executed for by
// Command, or "" when it runs the tests. TestMain dispatches on it.
func Child() string { return os.Getenv(childEnv) }

// Command returns a command that re-executes this test binary as role
// (its tests switched off), with env added to the environment: a real
// process that a test can kill with SIGKILL.
func Command(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	return cmd
}

// KillHook is the hook a child installs at the named steps of its work
// (e.g. the store's merge steps): it kills the process with SIGKILL the
// nth time it reaches the step a KillPoint named. It returns nil when no
// step was named, so that the child runs to completion.
func KillHook() func(step string) {
	at := os.Getenv(killEnv)
	if at == "" {
		return nil
	}
	step, nth, _ := strings.Cut(at, ":")
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		n = 1
	}
	seen := 0
	return func(s string) {
		if s != step {
			return
		}
		if seen++; seen == n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// KillPoint says where a process is killed with SIGKILL. The zero value
// lets it run to completion.
type KillPoint struct {
	// Step names a hook: the child kills itself the Nth time (1 when 0)
	// it reaches it (it installs KillHook).
	Step string
	N    int
	// After kills it this long after it started.
	After time.Duration
	// Mark kills it as soon as this file exists (the child writes it
	// where it wants to be killed, then waits).
	Mark string
	// When kills it as soon as the channel is closed: a hook on the
	// test's side, e.g. a registry handler the child reached.
	When <-chan struct{}
}

func (p KillPoint) String() string {
	switch {
	case p.Step != "":
		return fmt.Sprintf("at step %s (#%d)", p.Step, max(p.N, 1))
	case p.After > 0:
		return "after " + p.After.String()
	case p.Mark != "":
		return "when " + p.Mark + " appears"
	case p.When != nil:
		return "at the test's hook"
	}
	return "never"
}

// markTimeout bounds the wait for a KillPoint's Mark.
const markTimeout = 60 * time.Second

// Kill runs cmd (from Command, or any real process) and kills it with
// SIGKILL at p. It returns whether the kill ended it; false means it ran
// to completion first (exit 0). Any other end fails the test with the
// process's output, and so does a Mark that never appears.
func Kill(t testing.TB, cmd *exec.Cmd, p KillPoint) (killed bool) {
	t.Helper()
	var out bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &out
	}
	if p.Step != "" {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s:%d", killEnv, p.Step, max(p.N, 1)))
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	switch {
	case p.After > 0:
		select {
		case err = <-done:
		case <-time.After(p.After):
			cmd.Process.Signal(syscall.SIGKILL)
			err = <-done
		}
	case p.Mark != "" || p.When != nil:
		err = waitMark(cmd, done, p)
		if err == errNoMark {
			t.Fatalf("%s never reached the kill point (%s); its output:\n%s", cmd.Path, p, out.String())
		}
	default:
		err = <-done
	}
	if err == nil {
		return false
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	t.Fatalf("%s (kill %s): %v\n%s", cmd.Path, p, err, out.String())
	return false
}

var errNoMark = errors.New("mark never appeared")

// waitMark kills cmd once p's mark exists or its When is closed; it
// returns cmd's end.
func waitMark(cmd *exec.Cmd, done <-chan error, p KillPoint) error {
	deadline := time.Now().Add(markTimeout)
	for {
		hook := false
		select {
		case err := <-done:
			return err
		case <-p.When:
			hook = true
		case <-time.After(5 * time.Millisecond):
		}
		if _, err := os.Stat(p.Mark); hook || (p.Mark != "" && err == nil) {
			cmd.Process.Signal(syscall.SIGKILL)
			return <-done
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return errNoMark
		}
	}
}

// Seed returns the seed of a test's random kill points: HYDRAFY_TEST_SEED
// when set (to replay a failure), else a fresh one. It logs the seed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not a number", seedEnv, s)
		}
		seed = n
	}
	t.Logf("kill points from seed %d (replay with %s=%d)", seed, seedEnv, seed)
	return seed
}

// RandomKills returns n kill points at moments drawn from seed, each
// within d (how long an uninterrupted run takes).
func RandomKills(seed uint64, d time.Duration, n int) []KillPoint {
	rng := rand.New(rand.NewPCG(seed, 7))
	points := make([]KillPoint, n)
	for i := range points {
		points[i] = KillPoint{After: 1 + time.Duration(rng.Int64N(int64(max(d, time.Millisecond))))}
	}
	return points
}

// Timed runs cmd to completion and returns how long it took: the span
// that RandomKills draws from.
func Timed(t testing.TB, cmd *exec.Cmd) time.Duration {
	t.Helper()
	start := time.Now()
	if Kill(t, cmd, KillPoint{}) {
		t.Fatalf("%s was killed without a kill point", cmd.Path)
	}
	return time.Since(start)
}

// Hydrafy returns a command that runs hydrafy itself with args: this test
// binary, whose TestMain calls HydrafyMain first (cmd/hydrafy's tests do).
// Its environment is the test's without any HYDRAFY_ variable, plus env:
// the process reads only the secrets and settings it is given.
func Hydrafy(args []string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HYDRAFY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, childEnv+"=hydrafy"), env...)
	return cmd
}

// HydrafyMain runs main (hydrafy's) instead of the tests when this test
// binary was started by Hydrafy; main exits the process.
func HydrafyMain(main func()) {
	if Child() == "hydrafy" {
		main()
		os.Exit(0)
	}
}

// Crash runs one process per point, each made by start, kills it there
// and calls check with whether the kill happened: check verifies what the
// process left (Verify) and may start the next run over. It fails the
// test when no point killed a process, as the test then proved nothing.
func Crash(t testing.TB, points []KillPoint, start func() *exec.Cmd, check func(p KillPoint, killed bool)) {
	t.Helper()
	kills := 0
	for _, p := range points {
		killed := Kill(t, start(), p)
		if killed {
			kills++
		}
		check(p, killed)
	}
	t.Logf("%d of %d runs killed", kills, len(points))
	if kills == 0 {
		t.Fatal("no run was killed")
	}
}

// At parses "step" or "step:n" (the nth time the step is reached) into a
// kill point.
func At(s string) KillPoint {
	step, nth, _ := strings.Cut(s, ":")
	n, _ := strconv.Atoi(nth)
	return KillPoint{Step: step, N: n}
}
