// Package deploy_test checks the deployment files in this directory against
// the code: the Dockerfile's build, the systemd unit, the runner's
// config.toml snippet and the config keys the documents name.
package deploy_test

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
	line int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	return out
}

// shellWords splits a RUN line the way sh would for the plain words and
// double-quoted strings that the build command uses.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.ContainsRune("'$`\\;&|<>", r):
			t.Fatalf("build command %q uses %q, which this test does not interpret", s, r)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestDockerfile checks the stages of deploy/Dockerfile and runs its build
// command here: the result must be a static, stripped binary that starts.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var froms []instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("Dockerfile has %d FROM lines, want a build and a runtime stage", len(froms))
	}
	if f := strings.Fields(froms[0].args); len(f) != 3 || !strings.HasPrefix(f[0], "golang:1.26") || !strings.EqualFold(f[1], "AS") {
		t.Errorf("line %d: build stage FROM %q, want golang:1.26… AS <name>", froms[0].line, froms[0].args)
	}
	buildStage := strings.Fields(froms[0].args)[2]
	if !strings.HasPrefix(froms[1].args, "gcr.io/distroless/static") {
		t.Errorf("line %d: runtime FROM %q, want a distroless static base (no shell)", froms[1].line, froms[1].args)
	}

	// The runtime stage: the binary from the build stage, root, exec form.
	var final []instruction
	for _, in := range ins {
		if in.line > froms[1].line {
			final = append(final, in)
		}
	}
	binary := ""
	for _, in := range final {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+buildStage {
				binary = f[2]
			}
		case "USER":
			if in.args != "0" && in.args != "0:0" && in.args != "root" {
				t.Errorf("line %d: USER %s; hydrafy needs root for the store and the Docker socket", in.line, in.args)
			}
		case "ENTRYPOINT", "CMD", "RUN":
			if !strings.HasPrefix(in.args, "[") {
				t.Errorf("line %d: %s %s is in shell form; the base has no shell", in.line, in.cmd, in.args)
			}
		}
	}
	if !slices.ContainsFunc(final, func(in instruction) bool { return in.cmd == "USER" }) {
		t.Errorf("runtime stage sets no USER; say explicitly that it runs as root")
	}
	entry := slices.IndexFunc(final, func(in instruction) bool { return in.cmd == "ENTRYPOINT" })
	if binary == "" || entry < 0 || !strings.Contains(final[entry].args, `"`+binary+`"`) {
		t.Fatalf("runtime stage must COPY --from=%s the binary and run it as ENTRYPOINT", buildStage)
	}

	// The build command, run here as the Dockerfile runs it.
	var build []string
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = shellWords(t, in.args)
		}
	}
	if build == nil {
		t.Fatal("no RUN … go build in the Dockerfile")
	}
	var env []string
	for len(build) > 0 && strings.Contains(build[0], "=") {
		env = append(env, build[0])
		build = build[1:]
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("build runs with %v, want CGO_ENABLED=0 (static binary for the distroless base)", env)
	}
	for _, want := range []string{"-trimpath", "-ldflags", "-s -w", "./cmd/hydrafy", "-o"} {
		if !slices.Contains(build, want) {
			t.Errorf("build command %q lacks %q", build, want)
		}
	}
	if build[0] != "go" || build[1] != "build" {
		t.Fatalf("build command %q is not go build", build)
	}
	out := filepath.Join(t.TempDir(), "hydrafy")
	o := slices.Index(build, "-o")
	if o < 0 || o+1 >= len(build) {
		t.Fatalf("build command %q has no -o FILE", build)
	}
	build[o+1] = out

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, build[0], build[1:]...)
	cmd.Dir = ".." // the build context is the repository root
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(build, " "), err, msg)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has a program interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary imports libraries %v (%v), want none", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("binary has a symbol table; -ldflags \"-s -w\" strips it")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if root, err := filepath.Abs(".."); err == nil && bytes.Contains(data, []byte(root)) {
		t.Errorf("binary contains the build path %s; -trimpath removes it", root)
	}

	msg, err := exec.CommandContext(ctx, out, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(msg), "hydrafy ") {
		t.Errorf("%s version = %q, %v", out, msg, err)
	}
}
