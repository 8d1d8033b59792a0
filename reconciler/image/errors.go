package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"gitlab.com/hydrafy/hydrafy/internal/regerr"
)

// ErrNotNix reports an image that holds no Nix store (no store paths or no
// nix/var/nix/db/db.sqlite).
var ErrNotNix = errors.New("not a Nix image")

// lineError shows a one-line message for an error whose text may be long
// (registry bodies) while keeping it for errors.Is and errors.As.
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// registryError turns an error from talking to the registry about ref into
// one line that says what went wrong in the user's terms.
func registryError(ref name.Reference, retries int, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	line := func(format string, args ...any) error {
		return &lineError{msg: fmt.Sprintf(format, args...), err: err}
	}
	var pl *PullLimitError
	if errors.As(err, &pl) {
		return line("pulling %s: %v", ref, pl)
	}
	if msg, ok := regerr.Describe(ref.Context().RegistryStr(), err); ok {
		return line("pulling %s: %s", ref, msg)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusTooManyRequests || hasCode(te, transport.TooManyRequestsErrorCode):
			return line("pulling %s: registry %s still rate-limits after %d retries (429 too many requests); try again later", ref, ref.Context().RegistryStr(), retries)
		case hasCode(te, transport.NameUnknownErrorCode):
			return line("pulling %s: repository %s not found", ref, ref.Context().RepositoryStr())
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode):
			if _, ok := ref.(name.Digest); ok {
				return line("pulling %s: unknown digest %s", ref, ref.Identifier())
			}
			return line("pulling %s: unknown tag %s", ref, ref.Identifier())
		default:
			return line("pulling %s: registry answered %d %s", ref, te.StatusCode, http.StatusText(te.StatusCode))
		}
	}
	return fmt.Errorf("pulling %s: %w", ref, err)
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}
