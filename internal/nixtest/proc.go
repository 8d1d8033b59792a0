package nixtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildConfig is the NIX_CONFIG for builds in a chroot store: Nix builds
// there in its own sandbox, which needs the host's shell and tools (and
// any dirs a test's builder uses) mounted in; no substituters, no build
// users, and a lock poll of one second.
func BuildConfig(extraPaths ...string) string {
	paths := append([]string{"/bin", "/lib", "/lib64", "/usr"}, extraPaths...)
	return Config + "\nsubstituters =\nbuild-poll-interval = 1\nextra-sandbox-paths = " + strings.Join(paths, " ")
}

// Proc is a Nix process running in the background, with its output kept.
type Proc struct {
	Cmd    *exec.Cmd
	name   string
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan string
	done   chan struct{}
	err    error
}

// Start starts a Nix command with config as its NIX_CONFIG (Config when
// empty) and stdin (nil: none). The test's cleanup kills it if it still
// runs.
func Start(t testing.TB, config string, stdin io.Reader, name string, args ...string) *Proc {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install Debian's nix-bin (scripts/test does)", name)
	}
	if config == "" {
		config = Config
	}
	p := &Proc{name: name + " " + strings.Join(args, " "), lines: make(chan string, 1024), done: make(chan struct{})}
	p.Cmd = exec.Command(name, args...)
	p.Cmd.Env = append(os.Environ(), "NIX_CONFIG="+config)
	p.Cmd.Stdin = stdin
	p.Cmd.Stdout = &p.stdout
	errPipe, err := p.Cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.err = p.Cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// WaitOutput waits until the process writes a stderr line containing s
// (Nix's progress and warnings go there) and fails the test when it exits
// or timeout passes first.
func (p *Proc) WaitOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited before printing %q: %v\n%s", p.name, s, p.err, p.Stderr())
			}
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("%s did not print %q within %v:\n%s", p.name, s, timeout, p.Stderr())
		}
	}
}

// Wait waits for the process to exit and returns its stdout and exit error.
func (p *Proc) Wait() (string, error) {
	<-p.done
	if p.err != nil {
		return p.stdout.String(), fmt.Errorf("%s: %v: %s", p.name, p.err, strings.TrimSpace(p.Stderr()))
	}
	return p.stdout.String(), nil
}

// Stderr returns what the process wrote to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StoreOpen reports whether a process holds root's big-lock (as every Nix
// process that has the store open holds it shared): an exclusive,
// non-blocking flock fails.
func StoreOpen(t testing.TB, root string) bool {
	t.Helper()
	return !BigLockFree(t, root)
}

// WaitStoreOpen waits until a process has root's store open.
func WaitStoreOpen(t testing.TB, root string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !StoreOpen(t, root); {
		if time.Now().After(deadline) {
			t.Fatalf("no process opened the store %s within %v", root, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// HeldLocks returns the lock files in root's nix/store that some process
// holds (an exclusive, non-blocking flock fails).
func HeldLocks(t testing.TB, root string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(root, "nix/store/*.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, m := range matches {
		if !Lockable(t, m) {
			held = append(held, m)
		}
	}
	return held
}

// WaitLockWaiter waits until a process is blocked in flock on one of the
// files names (a "->" entry on its inode in /proc/locks): a deterministic
// sign that a writer waits for a lock another process holds.
func WaitLockWaiter(t testing.TB, timeout time.Duration, names ...string) {
	t.Helper()
	var want []string
	for _, name := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(name, &st); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf(":%d ", st.Ino))
	}
	for deadline := time.Now().Add(timeout); ; {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "->") || !strings.Contains(l, "FLOCK") {
				continue
			}
			for _, w := range want {
				if strings.Contains(l, w) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process waited for %v within %v:\n%s", names, timeout, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// HoldStore starts a Nix process that keeps root's store open (big-lock
// shared) until the returned func is called: `nix-store --import` reading
// from a pipe that stays open. The func then ends the import with an empty
// export and fails the test if Nix failed.
func HoldStore(t testing.TB, root string) (release func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, "", r, "nix-store", "--store", root, "--import")
	r.Close()
	WaitStoreOpen(t, root, 10*time.Second)
	return func() {
		t.Helper()
		// An export of no paths: its end marker, a zero 64-bit word.
		w.Write(make([]byte, 8))
		w.Close()
		if _, err := p.Wait(); err != nil {
			t.Errorf("the Nix process holding the store failed: %v", err)
		}
	}
}
