package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// The daemon's GitLab retries: 429 and 5xx answers are retried this many
// times, waiting between these bounds (longer when GitLab says so).
const (
	gitlabRetries = 3
	gitlabWaitMin = 500 * time.Millisecond
	gitlabWaitMax = 5 * time.Second
)

// newGitLabClient returns the daemon's GitLab client: every request it
// sends (retries included) is reported to observe and counted for the pass
// that sent it; a 429 is retried after GitLab's Retry-After.
func newGitLabClient(cfg config.Config, observe func(status int)) (*gitlab.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	gl, err := gitlab.NewClient(cfg.GitLab.Token.Reveal(), gitlab.WithBaseURL(cfg.GitLab.URL),
		gitlab.WithHTTPClient(&http.Client{Transport: reconciler.CountingTransport{Base: base, Observe: observe}}),
		gitlab.WithCustomRetryMax(gitlabRetries), gitlab.WithCustomRetryWaitMinMax(gitlabWaitMin, gitlabWaitMax),
		gitlab.WithCustomBackoff(gitlabBackoff))
	if err != nil {
		return nil, fmt.Errorf("creating GitLab client: %w", err)
	}
	return gl, nil
}

// gitlabBackoff is the wait before retry attempt n. After a 429 it is
// GitLab's Retry-After (retryablehttp's DefaultBackoff reads it; the
// client's own backoff reads only RateLimit-Reset), else doubling from min
// up to max; after a 5xx, a linear wait with jitter.
func gitlabBackoff(min, max time.Duration, n int, resp *http.Response) time.Duration {
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		return retryablehttp.DefaultBackoff(min, max, n, resp)
	}
	return retryablehttp.LinearJitterBackoff(min, max, n, resp)
}
