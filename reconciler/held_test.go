package reconciler

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// holdingStager is a fakeStager that says which digests the live store
// holds; err makes the check fail.
type holdingStager struct {
	*fakeStager
	held map[string]bool
	err  error
}

func (h *holdingStager) Held(_ context.Context, digests []string) (map[string]bool, error) {
	if h.err != nil {
		return nil, h.err
	}
	out := map[string]bool{}
	for _, d := range digests {
		out[d] = h.held[d]
	}
	return out, nil
}

// TestPassReseedsLostDigests: a seeded digest the live store no longer
// holds is dropped from the seeded ones and merged again; a failed check
// trusts the state.
func TestPassReseedsLostDigests(t *testing.T) {
	r := newRig(t)
	h := &holdingStager{fakeStager: r.stager, held: map[string]bool{dA: true, dB: true}}
	r.opts.Stager = h
	rec := r.reconciler(t)
	if rep := rec.Once(context.Background(), manual); rep.Result != ResultOK || len(rep.Seeded) != 2 {
		t.Fatalf("first pass: %+v", rep)
	}

	h.held[dB] = false // collected as garbage
	r.calls.log = nil
	rep := rec.Once(context.Background(), manual)
	if diff := cmp.Diff([]string{dB}, rep.Lost); diff != "" {
		t.Errorf("lost (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{dB}, rep.Missing); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	if !slices.Contains(r.calls.list(), "commit "+dB) || slices.Contains(r.calls.list(), "commit "+dA) {
		t.Errorf("calls %v, want %s committed again and %s left alone", r.calls.list(), dB, dA)
	}

	h.err = errors.New("reading layer records: permission denied")
	h.held[dA], h.held[dB] = false, false
	r.calls.log = nil
	rep = rec.Once(context.Background(), manual)
	if len(rep.Lost) != 0 || len(rep.Missing) != 0 || slices.Contains(r.calls.list(), "stop") {
		t.Errorf("pass with a failing check: %+v, calls %v", rep, r.calls.list())
	}
}
