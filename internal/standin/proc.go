package standin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// proc is one running stand-in: its options and the status it reports.
type proc struct {
	opts Options

	mu     sync.Mutex
	st     Status
	cfgMod time.Time

	saveMu sync.Mutex // orders status file writes
}

func newProc(opts Options) (*proc, error) {
	p := &proc{opts: opts, st: Status{PID: os.Getpid(), State: StateRunning}}
	if opts.ConfigFile != "" {
		p.loadConfig("start")
	}
	if err := p.serveMetrics(); err != nil {
		return nil, err
	}
	if err := p.save(); err != nil {
		return nil, err
	}
	return p, nil
}

// run is the main loop: it starts jobs while it may, and reacts to signals,
// finished jobs and config changes.
func (p *proc) run(ctx context.Context, sigs <-chan os.Signal) error {
	jobCtx, abort := context.WithCancel(context.Background())
	defer abort()
	done := make(chan jobResult, p.opts.Concurrent)
	// running counts jobs started here; the status counts a job as running
	// once it holds the big-lock.
	running, started, draining := 0, 0, false
	startJobs := func() {
		for !draining && running < p.opts.Concurrent && (p.opts.Jobs < 0 || started < p.opts.Jobs) {
			started++
			running++
			go func() { done <- p.job(jobCtx) }()
		}
	}
	aborted := func(why string) error {
		abort()
		p.update(func(s *Status) {
			s.State = StateAborted
			s.JobsAborted += s.JobsRunning
			s.JobsRunning = 0
		})
		p.opts.Log.Info("aborting jobs", "reason", why, "jobs", running)
		return ErrAborted
	}

	tick := time.NewTicker(p.opts.ReloadInterval)
	defer tick.Stop()
	startJobs()
	for {
		if draining && running == 0 {
			p.update(func(s *Status) { s.State = StateExited })
			p.opts.Log.Info("drained, exiting")
			return nil
		}
		select {
		case <-ctx.Done():
			return aborted("context cancelled")
		case sig := <-sigs:
			switch sig {
			case syscall.SIGQUIT:
				if !draining {
					p.opts.Log.Info("SIGQUIT: finishing running jobs", "jobs", running)
				}
				draining = true
				p.update(func(s *Status) { s.State = StateDraining })
			case syscall.SIGHUP:
				p.loadConfig("SIGHUP")
			default:
				return aborted(sig.String())
			}
		case res := <-done:
			running--
			startJobs()
			p.update(func(s *Status) {
				if !res.started {
					return
				}
				if res.err == nil {
					s.JobsDone++
				} else {
					s.JobsAborted++
				}
				s.JobsRunning--
			})
		case <-tick.C:
			p.reloadIfChanged()
		}
	}
}

// jobResult is how a job ended; started is false when it never got the
// big-lock.
type jobResult struct {
	started bool
	err     error
}

// job runs one job: it holds the store's big-lock shared, like Nix inside a
// job container, for the job's duration.
func (p *proc) job(ctx context.Context) jobResult {
	if p.opts.StoreDir != "" {
		unlock, err := lockShared(ctx, p.opts.StoreDir)
		if err != nil {
			p.opts.Log.Error("job could not lock the store", "error", err)
			return jobResult{err: err}
		}
		defer unlock()
	}
	p.update(func(s *Status) { s.JobsRunning++ })
	t := time.NewTimer(p.opts.JobDuration)
	defer t.Stop()
	select {
	case <-t.C:
		return jobResult{started: true}
	case <-ctx.Done():
		return jobResult{started: true, err: ctx.Err()}
	}
}

// loadConfig reads config.toml and records what it found; a broken file is
// reported in the status and the previous values are kept, as the real
// runner does.
func (p *proc) loadConfig(reason string) {
	fi, statErr := os.Stat(p.opts.ConfigFile)
	c, err := loadConfig(p.opts.ConfigFile)
	p.update(func(s *Status) {
		s.ConfigLoads++
		if reason == "SIGHUP" {
			s.Reloads++
		}
		if statErr == nil {
			p.cfgMod = fi.ModTime()
		}
		if err != nil {
			s.ConfigError = err.Error()
			return
		}
		s.ConfigError = ""
		if len(c.Runners) > 0 {
			s.Image = c.Runners[0].Docker.Image
			s.Volumes = c.Runners[0].Docker.Volumes
		}
	})
	p.opts.Log.Info("loaded config", "reason", reason, "error", err)
}

func (p *proc) reloadIfChanged() {
	if p.opts.ConfigFile == "" {
		return
	}
	fi, err := os.Stat(p.opts.ConfigFile)
	p.mu.Lock()
	changed := err == nil && !fi.ModTime().Equal(p.cfgMod)
	p.mu.Unlock()
	if changed {
		p.loadConfig("changed")
	}
}

func (p *proc) update(f func(*Status)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
	if err := p.save(); err != nil {
		p.opts.Log.Error("writing status", "error", err)
	}
}

func (p *proc) save() error {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	s := p.st
	s.Updated = time.Now().UTC()
	p.mu.Unlock()
	return writeStatus(p.opts.StatusFile, s)
}

// serveMetrics serves gitlab_runner_jobs on config.toml's listen_address, as
// gitlab-runner's metrics server does.
func (p *proc) serveMetrics() error {
	if p.opts.ConfigFile == "" {
		return nil
	}
	c, err := loadConfig(p.opts.ConfigFile)
	if err != nil || c.ListenAddress == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.ListenAddress)
	if err != nil {
		return fmt.Errorf("listening for metrics: %w", err)
	}
	p.st.MetricsAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		n := p.st.JobsRunning
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP gitlab_runner_jobs The current number of running builds.\n"+
			"# TYPE gitlab_runner_jobs gauge\n"+
			"gitlab_runner_jobs{executor_stage=\"docker_run\",runner=\"standin\",stage=\"step_script\",state=\"running\",system_id=\"s_standin\"} %d\n"+
			"# HELP gitlab_runner_concurrent The current value of concurrent setting\n"+
			"# TYPE gitlab_runner_concurrent gauge\n"+
			"gitlab_runner_concurrent %d\n", n, p.opts.Concurrent)
	})
	go http.Serve(ln, mux) //nolint:errcheck // ends with the process
	return nil
}
