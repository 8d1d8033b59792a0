package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type storeSchemaError struct{}

func (storeSchemaError) Error() string  { return "schema 11 differs from 10" }
func (storeSchemaError) Terminal() bool { return true }

func TestIsTerminal(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("connection reset"), false},
		{"marked", Terminal(errors.New("bad config")), true},
		{"wrapped mark", fmt.Errorf("staging: %w", Terminal(errors.New("hash mismatch"))), true},
		{"foreign terminal type", fmt.Errorf("commit: %w", storeSchemaError{}), true},
		{"deadline", fmt.Errorf("drain: %w", context.DeadlineExceeded), false},
		{"canceled wins", Terminal(context.Canceled), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsTerminal(tc.err); got != tc.want {
				t.Errorf("IsTerminal(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
