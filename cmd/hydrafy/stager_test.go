package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

func TestTerminalMerge(t *testing.T) {
	for _, tc := range []struct {
		err      error
		terminal bool
	}{
		{fmt.Errorf("live store: %w: live 10, image 11", store.ErrSchema), true},
		{fmt.Errorf("%w: /nix/store/a references /nix/store/b", store.ErrClosure), true},
		{store.ErrStagedMissing, false},
		{context.DeadlineExceeded, false},
		{errors.New("reading live db: database is locked"), false},
	} {
		got := terminalMerge(tc.err)
		if reconciler.IsTerminal(got) != tc.terminal || !errors.Is(got, tc.err) {
			t.Errorf("terminalMerge(%v): terminal %v, want %v", tc.err, reconciler.IsTerminal(got), tc.terminal)
		}
	}
}
