package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/internal/glerr"
)

// need is what pausing and reading the runner ask of the token.
var need = glerr.Need{
	Scope: "the manage_runner scope (or api)",
	Role:  "to manage the runner: a maintainer of the project or owner of the group it is registered to, or an administrator",
}

// Pause stops GitLab from assigning new jobs to the runner.
func (r *Runner) Pause(ctx context.Context) error {
	return r.setPaused(ctx, true)
}

// Unpause lets GitLab assign jobs to the runner again.
func (r *Runner) Unpause(ctx context.Context) error {
	return r.setPaused(ctx, false)
}

// Paused reports whether GitLab has the runner paused (GET /runners/:id),
// for example by an administrator.
func (r *Runner) Paused(ctx context.Context) (bool, error) {
	id, err := r.runnerID(ctx)
	if err != nil {
		return false, fmt.Errorf("reading runner: %w", err)
	}
	d, _, err := r.gl.Runners.GetRunnerDetails(id, gitlab.WithContext(ctx))
	if err != nil {
		return false, glerr.Explain(fmt.Sprintf("reading runner %d", id), err, need)
	}
	return d.Paused, nil
}

func (r *Runner) setPaused(ctx context.Context, paused bool) error {
	action := map[bool]string{true: "pausing", false: "unpausing"}[paused]
	id, err := r.runnerID(ctx)
	if err != nil {
		return fmt.Errorf("%s runner: %w", action, err)
	}
	_, _, err = r.gl.Runners.UpdateRunnerDetails(id, &gitlab.UpdateRunnerDetailsOptions{Paused: gitlab.Ptr(paused)}, gitlab.WithContext(ctx))
	if err != nil {
		return glerr.Explain(fmt.Sprintf("%s runner %d", action, id), err, need)
	}
	r.log.Info("runner "+map[bool]string{true: "paused", false: "unpaused"}[paused], "runner_id", id)
	return nil
}

// runnerID returns the configured runner id, or asks GitLab which runner
// the authentication token belongs to (POST /runners/verify) and keeps the
// answer.
func (r *Runner) runnerID(ctx context.Context) (int, error) {
	if r.gl == nil {
		return 0, ErrNoGitLab
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.id != 0 {
		return r.id, nil
	}
	if r.opts.Token == "" {
		return 0, errors.New("runner id unknown: set the runner id or its authentication token")
	}
	req, err := r.gl.NewRequest(http.MethodPost, "runners/verify", &gitlab.VerifyRegisteredRunnerOptions{Token: gitlab.Ptr(r.opts.Token.Reveal())}, []gitlab.RequestOptionFunc{gitlab.WithContext(ctx)})
	if err != nil {
		return 0, fmt.Errorf("verifying runner token: %w", err)
	}
	var v struct {
		ID int `json:"id"`
	}
	if _, err := r.gl.Do(req, &v); err != nil {
		// The error carries GitLab's answer, never the token, which travels
		// in the request body.
		var er *gitlab.ErrorResponse
		if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden {
			return 0, fmt.Errorf("verifying runner token: GitLab does not know it (403): check the runner's authentication token (glrt-…), or set the runner id")
		}
		return 0, glerr.Explain("verifying runner token", err, need)
	}
	if v.ID == 0 {
		return 0, errors.New("verifying runner token: GitLab did not return the runner id (GitLab before 15.10?): set the runner id")
	}
	r.id = v.ID
	r.log.Info("runner id resolved from its token", "runner_id", v.ID)
	return v.ID, nil
}
