// Package nixtest drives real Nix (Debian's nix-bin) for tests: it builds
// stores in chroot roots and is the oracle that checks every store hydrafy
// writes. Tests fail, never skip, when Nix is missing: scripts/test installs it.
package nixtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/synth"
)

// Config is the NIX_CONFIG the tests run Nix with: chroot stores need no
// sandbox, and no build users (Debian's nix-bin creates no nixbld group, and
// Nix warns on every command when the configured group is missing).
const Config = "experimental-features = nix-command\nsandbox = false\nbuild-users-group ="

// Nix runs a Nix command (nix-store, nix, …) and returns its stdout; it
// fails the test with the command's stderr on a non-zero exit.
func Nix(t testing.TB, stdin []byte, name string, args ...string) string {
	t.Helper()
	out, err := Run(stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Run runs a Nix command and returns its stdout or an error holding stderr.
func Run(stdin []byte, name string, args ...string) (string, error) {
	if _, err := exec.LookPath(name); err != nil {
		return "", fmt.Errorf("%s not found: install Debian's nix-bin (scripts/test does)", name)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+Config)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Build writes spec's store under root with Nix doing the registration:
// NAR hashes from `nix-store --dump`, rows from `nix-store --load-db`.
func Build(t testing.TB, root string, spec synth.Spec) []synth.Info {
	t.Helper()
	infos, err := synth.WriteTrees(root, spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range infos {
		nar := Nix(t, nil, "nix-store", "--dump", filepath.Join(root, infos[i].Path))
		sum := sha256.Sum256([]byte(nar))
		infos[i].NarHash = "sha256:" + hex.EncodeToString(sum[:])
		infos[i].NarSize = int64(len(nar))
	}
	LoadDB(t, root, infos)
	return infos
}

// LoadDB registers infos in root's db with `nix-store --load-db`.
func LoadDB(t testing.TB, root string, infos []synth.Info) {
	t.Helper()
	var b strings.Builder
	for _, in := range infos {
		fmt.Fprintf(&b, "%s\n%s\n%d\n\n%d\n", in.Path, strings.TrimPrefix(in.NarHash, "sha256:"), in.NarSize, len(in.Refs))
		for _, r := range in.Refs {
			fmt.Fprintln(&b, r)
		}
	}
	Nix(t, []byte(b.String()), "nix-store", "--store", root, "--load-db")
}

// Add adds the tree at src to root's store as a content-addressed path
// (`nix-store --add`) and returns its store path.
func Add(t testing.TB, root, src string) string {
	t.Helper()
	return strings.TrimSpace(Nix(t, nil, "nix-store", "--store", root, "--add", src))
}

// Paths lists every valid path of root's store (`nix path-info --all`), sorted.
func Paths(t testing.TB, root string) []string {
	t.Helper()
	out := Nix(t, nil, "nix", "path-info", "--store", root, "--all")
	paths := strings.Fields(out)
	sort.Strings(paths)
	return paths
}

// References lists the references of path in root's store, sorted.
func References(t testing.TB, root, path string) []string {
	t.Helper()
	refs := strings.Fields(Nix(t, nil, "nix-store", "--store", root, "-q", "--references", path))
	sort.Strings(refs)
	return refs
}

// Verify checks root's store with `nix-store --verify --check-contents`
// and fails the test when Nix reports anything or when the verify dropped
// rows (it silently forgets missing paths and still exits 0). It returns
// the valid paths.
func Verify(t testing.TB, root string) []string {
	t.Helper()
	before := Paths(t, root)
	cmd := exec.Command("nix-store", "--store", root, "--verify", "--check-contents")
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+Config)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nix-store --verify --check-contents %s: %v\n%s", root, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "error") || strings.Contains(l, "warning") || strings.Contains(l, "modified") || strings.Contains(l, "disappeared") {
			t.Fatalf("nix-store --verify reported on %s:\n%s", root, out)
		}
	}
	after := Paths(t, root)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("nix-store --verify dropped paths of %s: before %d, after %d", root, len(before), len(after))
	}
	return after
}
