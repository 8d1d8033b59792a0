// Package fakestore stands in for the live store where a daemon test
// exercises everything around it (webhooks, runner control, GitLab): a
// reconciler.Stager that stages any digest reference at once and commits
// through a function the test gives. Tests of the store itself use real
// stores (nixtest) instead.
package fakestore

import (
	"context"
	"fmt"
	"strings"

	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// Stager stages REPO@DIGEST references: each stage calls Staging (when
// set) and each commit calls Commit with the digest.
type Stager struct {
	Staging func(ctx context.Context, digest string) error
	Commit  func(ctx context.Context, digest string) (reconciler.CommitReport, error)
}

var _ reconciler.Stager = Stager{}

// Stage returns the staged store of ref's digest; a reference without a
// digest is refused, as the real stager refuses it.
func (s Stager) Stage(ctx context.Context, ref string) (reconciler.Staged, error) {
	_, d, ok := strings.Cut(ref, "@")
	if !ok {
		return nil, fmt.Errorf("staging %q: not a digest reference", ref)
	}
	if s.Staging != nil {
		if err := s.Staging(ctx, d); err != nil {
			return nil, err
		}
	}
	return staged{s, d}, nil
}

type staged struct {
	s      Stager
	digest string
}

func (s staged) Digest() string { return s.digest }
func (s staged) Close() error   { return nil }

func (s staged) Commit(ctx context.Context) (reconciler.CommitReport, error) {
	return s.s.Commit(ctx, s.digest)
}
