// Package glerr words GitLab's answers the same way, whichever part of
// hydrafy met them: what was being done, GitLab's status, and for the
// answers a user can fix, what to fix.
package glerr

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// Need is what the work asks of the token, for the words of a 403.
type Need struct {
	// Scope is the token scope the work needs ("the api scope").
	Scope string
	// Role is what the token's user must be ("the Developer role").
	Role string
}

// Explain wraps err from GitLab with action ("reading group/app",
// "pausing runner 7") and, for a 403, with what need says to fix.
func Explain(action string, err error, need Need) error {
	var er *gitlab.ErrorResponse
	var ne net.Error
	switch {
	case errors.Is(err, gitlab.ErrNotFound):
		return fmt.Errorf("%s: not found (404): check the path or id, and that the token's user can see it", action)
	case errors.As(err, &er) && er.Response != nil:
		switch code := er.Response.StatusCode; {
		case code == 401:
			return fmt.Errorf("%s: the GitLab token was rejected (401): %w", action, err)
		case code == 403 && bytes.Contains(er.Body, []byte("insufficient_scope")):
			return fmt.Errorf("%s: the GitLab token lacks a scope (403 insufficient_scope): give it %s", action, need.Scope)
		case code == 403:
			return fmt.Errorf("%s: forbidden (403): the token's user needs %s: %w", action, need.Role, err)
		case code == 429 || code >= 500:
			return fmt.Errorf("%s: GitLab answered %d after retries: %w", action, code, err)
		}
	case errors.As(err, &ne):
		return fmt.Errorf("%s: cannot reach GitLab: %w", action, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}
