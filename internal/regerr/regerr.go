// Package regerr words the registry failures every command can meet the
// same way, whichever command met them: a registry that cannot be
// reached, or that wants other credentials.
package regerr

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Describe returns the wording for err from talking to registry (a
// host[:port]) when it is one of the shared kinds, and false otherwise.
func Describe(registry string, err error) (string, bool) {
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || hasCode(te, transport.UnauthorizedErrorCode):
			return fmt.Sprintf("registry %s wants credentials or refused them (401 unauthorized); log in with docker login", registry), true
		case te.StatusCode == http.StatusForbidden || hasCode(te, transport.DeniedErrorCode):
			return fmt.Sprintf("registry %s denied access (403 forbidden)", registry), true
		}
		return "", false
	}
	var oe *net.OpError
	var de *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &de):
		return fmt.Sprintf("cannot reach registry %s: %v", registry, de), true
	case errors.As(err, &oe):
		cause := error(oe)
		if oe.Err != nil {
			cause = oe.Err
		}
		return fmt.Sprintf("cannot reach registry %s: %v", registry, cause), true
	case errors.As(err, &ne):
		return fmt.Sprintf("cannot reach registry %s: %v", registry, ne), true
	}
	return "", false
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}
