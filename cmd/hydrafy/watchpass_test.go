package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot"
	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// movingSeeder seeds whatever it is asked to; while it seeds the first
// digest, the registry's tag moves on (push runs once).
type movingSeeder struct {
	seeded map[string]bool
	asked  []string
	push   func()
}

func (s *movingSeeder) Seed(_ context.Context, ref string) (reconciler.Report, error) {
	s.asked = append(s.asked, ref)
	s.seeded[ref[strings.LastIndex(ref, "@")+1:]] = true
	if s.push != nil {
		s.push()
		s.push = nil
	}
	return reconciler.Report{ID: "p1"}, nil
}

func (s *movingSeeder) IsSeeded(digest string) bool { return s.seeded[digest] }

// TestWatchPassProposesWhatItSeeded: when the tag moves while the digest
// is being seeded, the pass proposes nothing (the merge request would say
// the store holds a digest it does not); the next pass seeds the newer
// digest and proposes it.
func TestWatchPassProposesWhatItSeeded(t *testing.T) {
	reg := nixtest.NewReg(t)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	first := reg.PushIndex(t, "latest", nixtest.RandomIndex(t, at, "2.24.9", "linux/amd64"))
	var second string
	gts := nixtest.NewGitLab(t, gitlabemu.Options{})
	gts.Emu.AddToken(e2eBotToken, "hydrafy-bot")
	gts.Project(t, "group/app", map[string]string{".gitlab-ci.yml": "build:\n  image: " + reg.Repo() + "@" + first + "\n"})

	cfg := config.Default()
	cfg.GitLab.URL, cfg.GitLab.Token = gts.URL, e2eBotToken
	cfg.Server.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Projects = []config.Project{{Path: "group/app", Files: []string{".gitlab-ci.yml"}}}
	cfg.Watch.Image, cfg.Watch.Settle = reg.Repo(), 0
	b, err := bot.New(cfg, nil, bot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &movingSeeder{seeded: map[string]bool{}, push: func() {
		second = reg.PushIndex(t, "latest", nixtest.RandomIndex(t, at.Add(time.Hour), "2.25.0", "linux/amd64"))
	}}
	w := botWatcher{bot: b, seeder: s}

	p, err := w.run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.Report.Propose != nil || len(gts.Emu.MergeRequests("group/app")) != 0 {
		t.Fatalf("the pass that seeded %s proposed %s: %+v", first, second, gts.Emu.MergeRequests("group/app"))
	}
	if p, err = w.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	mrs := gts.Emu.MergeRequests("group/app")
	if len(mrs) != 1 || !strings.Contains(mrs[0].Description, second) || p.Seeding != "seeded by pass p1" {
		t.Fatalf("second pass: seeding %q, merge requests %+v", p.Seeding, mrs)
	}
	if want := []string{reg.Repo() + "@" + first, reg.Repo() + "@" + second}; strings.Join(s.asked, " ") != strings.Join(want, " ") {
		t.Errorf("seeded %q, want %q", s.asked, want)
	}
}
