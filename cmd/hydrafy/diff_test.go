package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteUnifiedDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one line", "a\nb\nc\n", "a\nB\nc\n", "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"context of three", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nV\n6\n7\n8\n9\n",
			"--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+V\n 6\n 7\n 8\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "X\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nY\n",
			"--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+Y\n"},
		{"merged hunks", "1\n2\n3\n4\n5\n6\n7\n8\n", "X\n2\n3\n4\n5\n6\n7\nY\n",
			"--- a/f\n+++ b/f\n@@ -1,8 +1,8 @@\n-1\n+X\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n"},
		{"no final newline", "a\nb", "a\nB", "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+B\n\\ No newline at end of file\n"},
		{"newline added", "a", "a\n", "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n"},
		{"crlf", "a\r\nb\r\n", "a\r\nB\r\n", "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n"},
		{"from empty", "", "a\n", "--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+a\n"},
		{"insert", "a\nb\n", "a\nx\nb\n", "--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n+x\n b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeUnifiedDiff(&out, "f", []byte(tt.a), []byte(tt.b)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("writeUnifiedDiff mismatch (-want +got):\n%s", diff)
			}
			if tt.want != "" {
				checkApplies(t, tt.a, tt.b, out.String())
			}
		})
	}
}

// TestWriteUnifiedDiffApplies diffs random files and has git apply the
// patches: each must turn the old file into the new one exactly.
func TestWriteUnifiedDiffApplies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a\n", "b\n", "c\n", "image: nixos/nix\n", "  script:\n", "x\r\n"}
	gen := func() string {
		var s strings.Builder
		for range rng.IntN(40) {
			s.WriteString(words[rng.IntN(len(words))])
		}
		if rng.IntN(4) == 0 {
			return strings.TrimSuffix(s.String(), "\n")
		}
		return s.String()
	}
	for i := range 200 {
		a := gen()
		b := a
		switch i % 3 {
		case 0:
			b = gen()
		default: // a few edits, as pinning makes
			lines := splitLines([]byte(a))
			for range rng.IntN(4) + 1 {
				if len(lines) > 0 {
					j := rng.IntN(len(lines))
					lines[j] = words[rng.IntN(len(words))]
				}
			}
			b = strings.Join(lines, "")
		}
		var out bytes.Buffer
		if err := writeUnifiedDiff(&out, "f", []byte(a), []byte(b)); err != nil {
			t.Fatal(err)
		}
		if a == b {
			if out.Len() != 0 {
				t.Fatalf("diff of equal files is %q", out.String())
			}
			continue
		}
		checkApplies(t, a, b, out.String())
	}
}

// checkApplies applies patch to a file holding a with git apply and
// expects b.
func checkApplies(t *testing.T, a, b, patch string) {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte(a), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "apply", "--whitespace=nowarn", "-")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(patch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git apply of\n%s\nfailed: %v: %s", patch, err, out)
	}
	got, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b {
		t.Fatalf("patch\n%s\nturned %q into %q, want %q", patch, a, got, b)
	}
}
