package propose

import (
	"bytes"
	"errors"
	"fmt"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// explain wraps err from GitLab with what was being done and, for the
// answers a user can fix, what to fix.
func explain(action string, err error) error {
	var er *gitlab.ErrorResponse
	switch {
	case errors.Is(err, gitlab.ErrNotFound):
		return fmt.Errorf("%s: not found (404): check the path, and that the token's user is a member of the project", action)
	case errors.As(err, &er) && er.Response != nil:
		switch code := er.Response.StatusCode; {
		case code == 401:
			return fmt.Errorf("%s: the GitLab token was rejected (401): %w", action, err)
		case code == 403 && bytes.Contains(er.Body, []byte("insufficient_scope")):
			return fmt.Errorf("%s: the GitLab token lacks the api scope (403 insufficient_scope): give it the api scope", action)
		case code == 403:
			return fmt.Errorf("%s: forbidden (403): the token's user needs the Reporter role to read the project and the Developer role to push and open merge requests: %w", action, err)
		case code == 429 || code >= 500:
			return fmt.Errorf("%s: GitLab answered %d after retries: %w", action, code, err)
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}
