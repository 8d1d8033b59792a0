package propose

import (
	"fmt"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/config"
)

// NewClient returns a GitLab client for the instance at url (such as
// "https://gitlab.example.com") authenticated with token. The client keeps
// the library's retries of 429 and 5xx answers, which the per-project
// errors of a pass rely on.
func NewClient(url string, token config.Secret) (*gitlab.Client, error) {
	if url == "" {
		return nil, fmt.Errorf("creating GitLab client: no URL")
	}
	base := strings.TrimSuffix(url, "/")
	if !strings.HasSuffix(base, "/api/v4") {
		base += "/api/v4"
	}
	gl, err := gitlab.NewClient(token.Reveal(), gitlab.WithBaseURL(base))
	if err != nil {
		return nil, fmt.Errorf("creating GitLab client for %s: %w", url, err)
	}
	return gl, nil
}
