package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// lookupTimeout bounds asking GitLab for a default branch on behalf of a
// webhook (GitLab waits 10 s for the answer).
const lookupTimeout = 3 * time.Second

// LookupDefaultBranch returns a watched project's default branch: the one
// a pass last observed, or else GitLab's answer, asked once for all
// concurrent callers and kept until a pass observes the project.
func (r *Reconciler) LookupDefaultBranch(ctx context.Context, project string) (string, error) {
	if b := r.DefaultBranch(project); b != "" {
		return b, nil
	}
	path := ""
	for _, p := range r.opts.Projects {
		if strings.EqualFold(p.Path, project) {
			path = p.Path
		}
	}
	if path == "" {
		return "", fmt.Errorf("looking up the default branch of %s: not a watched project", project)
	}
	v, err, _ := r.lookups.Do(path, func() (any, error) {
		r.mu.Lock()
		b, ok := r.looked[path]
		r.mu.Unlock()
		if ok {
			return b, nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		b, err := r.opts.Repo.DefaultBranch(ctx, path)
		if err != nil {
			return "", err
		}
		r.mu.Lock()
		if r.looked == nil {
			r.looked = map[string]string{}
		}
		r.looked[path] = b
		r.mu.Unlock()
		return b, nil
	})
	if err != nil {
		return "", fmt.Errorf("looking up the default branch of %s: %w", path, err)
	}
	return v.(string), nil
}
