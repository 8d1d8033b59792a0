package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// ErrDrainTimeout is returned by WaitIdle when jobs still run after
// Options.DrainTimeout.
var ErrDrainTimeout = errors.New("drain timeout exceeded")

// WaitIdle returns once the runner runs no jobs: GitLab lists none running
// for it and, when Options.MetricsURL is set, the runner's own
// gitlab_runner_jobs gauge is zero. It gives up after Options.DrainTimeout
// with an error that names the jobs still running. Pause the runner first,
// or new jobs may keep it busy.
func (r *Runner) WaitIdle(ctx context.Context) error {
	id, err := r.runnerID(ctx)
	if err != nil {
		return fmt.Errorf("waiting for runner to go idle: %w", err)
	}
	parent := ctx
	if r.opts.DrainTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.DrainTimeout)
		defer cancel()
	}
	start := time.Now()
	// What the last look that finished found, for the timeout error: a
	// look cut short by the deadline tells nothing.
	var lastBusy []string
	var lastErr error
	for {
		busy, err := r.busy(ctx, id)
		switch {
		case err == nil && len(busy) == 0:
			r.log.Info("runner idle", "runner_id", id, "waited", time.Since(start).Round(time.Millisecond))
			return nil
		case err == nil:
			lastBusy, lastErr = busy, nil
			r.log.Info("waiting for jobs", "runner_id", id, "running", strings.Join(busy, ", "))
		case ctx.Err() == nil:
			lastErr = err
			r.log.Warn("checking runner jobs", "runner_id", id, "error", err)
		}
		t := time.NewTimer(r.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			if parent.Err() != nil {
				return fmt.Errorf("waiting for runner %d to go idle: %w", id, parent.Err())
			}
			still := strings.Join(lastBusy, ", ")
			switch {
			case lastErr != nil:
				still = fmt.Sprintf("unknown (%v)", lastErr)
			case len(lastBusy) == 0:
				still = "unknown (no answer in time)"
			}
			return fmt.Errorf("waiting for runner %d to go idle: %w after %s; still running: %s", id, ErrDrainTimeout, r.opts.DrainTimeout, still)
		case <-t.C:
		}
	}
}

// busy describes the jobs the runner runs now, from GitLab and from the
// runner's metrics.
func (r *Runner) busy(ctx context.Context, id int) ([]string, error) {
	jobs, err := r.runningJobs(ctx, id)
	if err != nil {
		return nil, err
	}
	var busy []string
	for _, j := range jobs {
		d := fmt.Sprintf("job %d %s", j.ID, j.Name)
		if j.Project != nil && j.Project.PathWithNamespace != "" {
			d += " (" + j.Project.PathWithNamespace + ")"
		}
		busy = append(busy, d)
	}
	if r.opts.MetricsURL == "" {
		return busy, nil
	}
	n, err := scrapeJobs(ctx, r.opts.MetricsURL)
	if err != nil {
		// A runner that is not running runs no jobs; otherwise the count is
		// unknown.
		if up, rerr := r.ctl.running(ctx); rerr == nil && !up {
			return busy, nil
		}
		return nil, err
	}
	if n > len(busy) {
		busy = append(busy, fmt.Sprintf("%d jobs by the runner's gitlab_runner_jobs metric", n))
	}
	return busy, nil
}

func (r *Runner) runningJobs(ctx context.Context, id int) ([]*gitlab.Job, error) {
	opt := &gitlab.ListRunnerJobsOptions{
		Status:      gitlab.Ptr("running"),
		ListOptions: gitlab.ListOptions{PerPage: 100},
	}
	var all []*gitlab.Job
	for {
		jobs, resp, err := r.gl.Runners.ListRunnerJobs(id, opt, gitlab.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("listing running jobs of runner %d: %w", id, err)
		}
		all = append(all, jobs...)
		if resp == nil || resp.NextPage == 0 {
			return all, nil
		}
		opt.Page = resp.NextPage
	}
}
