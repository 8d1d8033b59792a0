package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// BenchmarkConfigure measures one config.toml edit of a file with three
// runners: parse, scan, edit, re-parse, check, atomic write.
func BenchmarkConfigure(b *testing.B) {
	orig, err := os.ReadFile(filepath.Join("testdata", "configure", "several-runners.original.toml"))
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "config.toml")
	r, err := New(Options{Control: "none", ConfigFile: file, PinImage: true}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := os.WriteFile(file, orig, 0o600); err != nil {
			b.Fatal(err)
		}
		if changed, err := r.Configure(goldenStore, goldenImage); err != nil || !changed {
			b.Fatal(changed, err)
		}
	}
}

// BenchmarkStopStartIdle measures the restart of an idle stand-in runner
// through the command control: SIGQUIT, wait for the exit, start, wait for
// its status. This is the part of the runner downtime that the control
// itself adds.
func BenchmarkStopStartIdle(b *testing.B) {
	f := nixtest.NewStandin(b, "", "")
	r, err := New(Options{Control: "command", StopCommand: f.StopArgs(), StartCommand: f.StartArgs("-jobs=0")}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := r.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Stop(ctx); err != nil {
		b.Fatal(err)
	}
}
