package reconciler

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// calls is an ordered record of what the fakes were asked to do.
type calls struct {
	mu  sync.Mutex
	log []string
}

func (c *calls) add(format string, a ...any) {
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf(format, a...))
	c.mu.Unlock()
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

func (c *calls) count(name string) int {
	n := 0
	for _, s := range c.list() {
		if s == name {
			n++
		}
	}
	return n
}

// fakeRunner records every call. fail makes a method fail; hook runs at the
// start of every method (to block or to observe).
type fakeRunner struct {
	calls *calls
	mu    sync.Mutex
	fail  map[string][]error // consumed one per call; nil entries succeed
	hook  func(ctx context.Context, method string) error
	up    bool
	// pausedBefore is what Paused answers: paused by an administrator.
	pausedBefore bool
}

func (f *fakeRunner) do(ctx context.Context, method string) error {
	f.calls.add("%s", method)
	if f.hook != nil {
		if err := f.hook(ctx, method); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if errs := f.fail[method]; len(errs) > 0 {
		f.fail[method] = errs[1:]
		if errs[0] != nil {
			return errs[0]
		}
	}
	switch method {
	case "stop":
		f.up = false
	case "start":
		f.up = true
	}
	return nil
}

func (f *fakeRunner) Preflight(ctx context.Context) error { return f.do(ctx, "preflight") }
func (f *fakeRunner) Paused(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pausedBefore, nil
}
func (f *fakeRunner) Pause(ctx context.Context) error    { return f.do(ctx, "pause") }
func (f *fakeRunner) Unpause(ctx context.Context) error  { return f.do(ctx, "unpause") }
func (f *fakeRunner) WaitIdle(ctx context.Context) error { return f.do(ctx, "wait-idle") }
func (f *fakeRunner) Stop(ctx context.Context) error     { return f.do(ctx, "stop") }
func (f *fakeRunner) Start(ctx context.Context) error    { return f.do(ctx, "start") }

func (f *fakeRunner) Running(ctx context.Context) (bool, error) {
	f.calls.add("running?")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, nil
}

func (f *fakeRunner) Configure(storeDir, image string) (bool, error) {
	if err := f.do(context.Background(), "configure"); err != nil {
		return false, err
	}
	f.calls.add("config %s %s", storeDir, image)
	return image != "", nil
}

// fakeStager stages any digest; stageErr and commitErr make one fail;
// commitHook runs before a commit (to block or to observe).
type fakeStager struct {
	calls    *calls
	stageErr map[string]error
	// stageErrs are consumed one per call before stageErr.
	stageErrs  map[string][]error
	commitErr  map[string]error
	commitHook func(ctx context.Context, digest string)
	// pending, when set, makes staged stores Planners that would add this
	// many paths; a negative count fails the plan, -2 for good.
	pending map[string]int
	// commit, when set, commits instead of the fixed report.
	commit func(ctx context.Context, digest string) (CommitReport, error)
	// live makes staged stores LiveCommitters.
	live bool
}

func (f *fakeStager) Stage(ctx context.Context, ref string) (Staged, error) {
	_, d, _ := strings.Cut(ref, "@")
	f.calls.add("stage %s", ref)
	if errs := f.stageErrs[d]; len(errs) > 0 {
		f.stageErrs[d] = errs[1:]
		if errs[0] != nil {
			return nil, errs[0]
		}
	}
	if err := f.stageErr[d]; err != nil {
		return nil, err
	}
	if f.pending != nil {
		return &plannedStaged{fakeStaged{f: f, digest: d}}, nil
	}
	if f.live {
		return &liveStaged{fakeStaged{f: f, digest: d}}, nil
	}
	return &fakeStaged{f: f, digest: d}, nil
}

type plannedStaged struct{ fakeStaged }

type liveStaged struct{ fakeStaged }

func (s *liveStaged) CommitLive(ctx context.Context) (CommitReport, error) {
	s.f.calls.add("commit-live %s", s.digest)
	if err := s.f.commitErr[s.digest]; err != nil {
		return CommitReport{}, err
	}
	return CommitReport{PathsAdded: 3, BytesAdded: 300}, nil
}

func (s *plannedStaged) PathsToAdd(context.Context) (int, error) {
	s.f.calls.add("plan %s", s.digest)
	n := s.f.pending[s.digest]
	if n == -2 {
		return 0, Terminal(errors.New("db schema: the live store has schema 10, the image 11"))
	}
	if n < 0 {
		return 0, errors.New("reading the live db: locked")
	}
	return n, nil
}

type fakeStaged struct {
	f      *fakeStager
	digest string
}

func (s *fakeStaged) Digest() string { return s.digest }

func (s *fakeStaged) Commit(ctx context.Context) (CommitReport, error) {
	if s.f.commitHook != nil {
		s.f.commitHook(ctx, s.digest)
	}
	s.f.calls.add("commit %s", s.digest)
	if err := s.f.commitErr[s.digest]; err != nil {
		return CommitReport{}, err
	}
	if s.f.commit != nil {
		return s.f.commit(ctx, s.digest)
	}
	return CommitReport{PathsAdded: 3, BytesAdded: 300}, nil
}

func (s *fakeStaged) Close() error {
	s.f.calls.add("close %s", s.digest)
	return nil
}

// fakeRepo serves files per project on branch "main", and on other
// branches under "project:file@branch".
type fakeRepo struct {
	mu    sync.Mutex
	files map[string]string // "project:file" → content
	err   map[string]error  // project → error
}

func (f *fakeRepo) set(project, file, content string) {
	f.mu.Lock()
	f.files[project+":"+file] = content
	f.mu.Unlock()
}

func (f *fakeRepo) DefaultBranch(ctx context.Context, project string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err[project]; err != nil {
		return "", err
	}
	return "main", nil
}

func (f *fakeRepo) ReadFile(ctx context.Context, project, file, ref string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := project + ":" + file
	if ref != "main" {
		key += "@" + ref
	}
	s, ok := f.files[key]
	if !ok {
		return nil, ErrNotFound
	}
	return []byte(s), nil
}

// Branches lists "main" and every branch a file is served on.
func (f *fakeRepo) Branches(ctx context.Context, project string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err[project]; err != nil {
		return nil, err
	}
	set := map[string]bool{"main": true}
	for key := range f.files {
		p, rest, _ := strings.Cut(key, ":")
		if _, b, ok := strings.Cut(rest, "@"); ok && p == project {
			set[b] = true
		}
	}
	out := make([]string, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	sort.Strings(out)
	return out, nil
}

// findLines is a minimal reference finder: "image: REPO@DIGEST" lines.
func findLines(src []byte, image string) ([]Pin, error) {
	var pins []Pin
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		v, ok := strings.CutPrefix(line, "image: ")
		if !ok {
			continue
		}
		repo, digest, _ := strings.Cut(v, "@")
		repo, tag, _ := strings.Cut(repo, ":")
		if repo == image {
			pins = append(pins, Pin{Line: n, Raw: v, Tag: tag, Digest: digest})
		}
	}
	return pins, nil
}

// ticking is a clock that advances one second per reading.
type ticking struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ticking) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

type rig struct {
	calls  *calls
	runner *fakeRunner
	stager *fakeStager
	repo   *fakeRepo
	opts   Options
}

func newRig(t *testing.T) *rig {
	t.Helper()
	c := &calls{}
	r := &rig{
		calls:  c,
		runner: &fakeRunner{calls: c, up: true, fail: map[string][]error{}},
		stager: &fakeStager{calls: c},
		repo: &fakeRepo{files: map[string]string{
			"group/a:.gitlab-ci.yml": "build:\n  image: nixos/nix@" + dA + "\n",
			"group/b:.gitlab-ci.yml": "build:\n  image: nixos/nix:2.24@" + dB + "\n",
			"group/c:.gitlab-ci.yml": "build:\n  image: nixos/nix:latest\n",
		}},
	}
	clock := &ticking{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.opts = Options{
		Image: "nixos/nix",
		Projects: []Project{
			{Path: "group/a", Files: []string{".gitlab-ci.yml"}},
			{Path: "group/b", Files: []string{".gitlab-ci.yml", "ci/extra.yml"}},
			{Path: "group/c", Files: []string{".gitlab-ci.yml"}},
		},
		StoreDir: "/srv/nix-backup",
		PinImage: true,
		StateDir: t.TempDir(),
		Repo:     r.repo,
		Find:     findLines,
		Stager:   r.stager,
		Runner:   r.runner,
		Now:      clock.Now,
	}
	return r
}

// failures are the errors a rig's runner (by call) and stager (by
// digest) return.
type failures struct {
	runner        map[string][]error
	stage, commit map[string]error
}

// failingPass runs one manual pass on a fresh rig whose runner and stager
// fail as f says.
func failingPass(t *testing.T, f failures) (*rig, Report) {
	t.Helper()
	r := newRig(t)
	r.runner.fail = f.runner
	r.stager.stageErr = f.stage
	r.stager.commitErr = f.commit
	return r, r.reconciler(t).Once(context.Background(), manual)
}

func (r *rig) reconciler(t *testing.T) *Reconciler {
	t.Helper()
	rec, err := New(r.opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
