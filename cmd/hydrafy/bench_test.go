package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// quickRunner stops and starts at once: the downtime it sees is hydrafy's
// own part (the commit and the config.toml edit), not the runner's.
type quickRunner struct{}

func (quickRunner) Preflight(context.Context) error        { return nil }
func (quickRunner) Paused(context.Context) (bool, error)   { return false, nil }
func (quickRunner) Pause(context.Context) error            { return nil }
func (quickRunner) Unpause(context.Context) error          { return nil }
func (quickRunner) WaitIdle(context.Context) error         { return nil }
func (quickRunner) Stop(context.Context) error             { return nil }
func (quickRunner) Start(context.Context) error            { return nil }
func (quickRunner) Running(context.Context) (bool, error)  { return true, nil }
func (quickRunner) Configure(string, string) (bool, error) { return true, nil }

type pinnedRepo struct{ ci string }

func (r pinnedRepo) DefaultBranch(context.Context, string) (string, error) { return "main", nil }
func (r pinnedRepo) ReadFile(context.Context, string, string, string) ([]byte, error) {
	return []byte(r.ci), nil
}

func pushSynth(b *testing.B, host, version string, o synth.ReleaseOptions) (string, int64) {
	b.Helper()
	root := b.TempDir()
	o.Version = version
	infos, err := synth.Build(root, synth.Release(o))
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, in := range infos {
		size += in.NarSize
	}
	img, err := synth.Image(root, synth.ImageOptions{Arch: "amd64"})
	if err != nil {
		b.Fatal(err)
	}
	return nixtest.PushIndex(b, host+"/nixos/nix:"+version, nixtest.Index(b, img)), size
}

// benchStore seeds ref into a new store dir and returns the dir, the store
// in it and the store's stager.
func benchStore(b *testing.B, ref string) (dir, live string, stager reconciler.Stager) {
	b.Helper()
	dir = b.TempDir()
	live = filepath.Join(dir, "store")
	seedStore(b, ref, live)
	cfg := config.Default()
	cfg.Store.Dir = live
	cfg.Store.Platform = "linux/amd64"
	stager, err := newStager(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return dir, live, stager
}

// BenchmarkRunnerDowntime runs one reconcile pass that merges a ~300 MB
// release into a live store holding an older one, with the real stager and
// store, and reports the runner downtime (stop to start: the commit and the
// config.toml edit) next to the staging time that happens before the stop.
// The target is a downtime under 2 s. Run it with -benchtime=1x.
func BenchmarkRunnerDowntime(b *testing.B) {
	host := nixtest.Registry(b)
	base := synth.ReleaseOptions{Paths: 80, Shared: 20, Base: "nixpkgs", FilesPerPath: 16, FileSize: 256 << 10}
	digestA, _ := pushSynth(b, host, "2.24.9", base)
	digestB, sizeB := pushSynth(b, host, "2.25.0", base)
	repo := host + "/nixos/nix"

	for b.Loop() {
		dir, live, stager := benchStore(b, repo+"@"+digestA)
		rec, err := reconciler.New(reconciler.Options{
			Image:    repo,
			Projects: []reconciler.Project{{Path: "group/app", Files: []string{".gitlab-ci.yml"}}},
			StoreDir: live,
			StateDir: filepath.Join(dir, "state"),
			Repo:     pinnedRepo{ci: "build:\n  image: " + repo + "@" + digestB + "\n"},
			Find:     reconciler.PinFind,
			Stager:   stager,
			Runner:   quickRunner{},
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		rep := rec.Once(context.Background(), reconciler.Reason{Kind: reconciler.KindManual})
		rec.Close()
		if rep.Result != reconciler.ResultOK {
			b.Fatalf("pass: %s %s", rep.Result, rep.Error)
		}
		var stage float64
		for _, s := range rep.Steps {
			if s.Name == "stage" {
				stage += s.Seconds
			}
		}
		b.ReportMetric(rep.DowntimeSeconds, "downtime-s")
		b.ReportMetric(stage, "stage-s")
		fmt.Printf("runner downtime %.3fs for a %d MB release (%d paths added, %d MB), staged before the stop in %.2fs; downtime/stage = %.3f (target downtime < 2s)\n",
			rep.DowntimeSeconds, sizeB>>20, rep.Commits[0].PathsAdded, rep.Commits[0].BytesAdded>>20, stage, rep.DowntimeSeconds/stage)
	}
}
