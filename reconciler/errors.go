package reconciler

import (
	"context"
	"errors"
)

// ErrNotFound is returned by a Repo for a file that does not exist.
var ErrNotFound = errors.New("not found")

// terminalError marks an error that retrying cannot fix (bad configuration,
// an image whose store fails verification).
type terminalError struct{ err error }

func (e terminalError) Error() string  { return e.err.Error() }
func (e terminalError) Unwrap() error  { return e.err }
func (e terminalError) Terminal() bool { return true }

// Terminal marks err as terminal: periodic resyncs do not retry it; a
// webhook, an explicit resync or a restart does.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err, or an error it wraps, says it is terminal
// through a `Terminal() bool` method. Everything else is transient: a
// timeout, a lost connection, a runner that is busy.
func IsTerminal(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var t interface{ Terminal() bool }
	return errors.As(err, &t) && t.Terminal()
}
