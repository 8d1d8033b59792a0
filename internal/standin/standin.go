// Package standin is a stand-in for gitlab-runner: a process that "runs jobs"
// and follows gitlab-runner's documented signal contract, so that runner
// control can be tested with real processes and signals.
//
// SIGQUIT: take no new jobs, exit 0 once the running jobs finish.
// SIGTERM, SIGINT: abort the running jobs and exit 1 at once.
// SIGHUP: reload config.toml. config.toml is also re-read when it changes,
// checked every 3 s like the real runner.
//
// A job holds a shared flock on STORE/nix/var/nix/db/big-lock while it runs,
// as every Nix process inside a job container does.
package standin

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Options configures one stand-in runner process.
type Options struct {
	ConfigFile string // config.toml to read; empty = none
	StatusFile string // JSON status, rewritten atomically on every change
	StoreDir   string // jobs hold a shared flock on StoreDir/nix/var/nix/db/big-lock; empty = no lock
	// Jobs is how many jobs to run before going idle; negative = without end.
	Jobs           int
	JobDuration    time.Duration // how long each job runs
	Concurrent     int           // jobs at a time; default 1
	ReloadInterval time.Duration // config.toml change check; default 3 s
	// Parent, when set, is a process whose end aborts the stand-in as
	// SIGTERM does: a demo killed with -9 leaves no runner behind.
	Parent int
	Log    *slog.Logger
}

// ErrAborted is what Run returns after SIGTERM or SIGINT aborted the jobs:
// the process exits 1.
var ErrAborted = errors.New("aborted by signal")

func (o *Options) defaults() {
	if o.Concurrent <= 0 {
		o.Concurrent = 1
	}
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = 3 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Run runs the stand-in until a signal ends it: nil after a graceful SIGQUIT
// drain, ErrAborted after SIGTERM or SIGINT (or ctx cancelled).
func Run(ctx context.Context, opts Options) error {
	opts.defaults()
	// Signals are caught before the status file says "running", so a
	// caller that reacts to it cannot kill the process with a SIGHUP.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	p, err := newProc(opts)
	if err != nil {
		return err
	}
	if opts.Parent > 0 {
		go watchParent(ctx, opts.Parent, sigs)
	}
	return p.run(ctx, sigs)
}

// watchParent delivers a SIGTERM to sigs once the process parent is gone.
func watchParent(ctx context.Context, parent int, sigs chan<- os.Signal) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !Alive(parent) {
				sigs <- syscall.SIGTERM
				return
			}
		}
	}
}
