package reconciler

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestProposedDigestSeededAheadOfMerge: a digest pinned only on a project's
// proposal branch is seeded (its merge request's pipeline needs the store),
// while config.toml keeps pinning what the default branches pin. Once the
// merge request is merged, the next pass only re-pins config.toml: nothing
// is missing, so the runner is neither paused nor stopped.
func TestProposedDigestSeededAheadOfMerge(t *testing.T) {
	r := newRig(t)
	r.opts.ProposalBranch = "hydrafy/nixos-nix-digest"
	r.opts.Projects = r.opts.Projects[:1] // group/a pins dA
	r.repo.set("group/a", ".gitlab-ci.yml@hydrafy/nixos-nix-digest", "build:\n  image: nixos/nix@"+dC+"\n")
	rec := r.reconciler(t)

	rep := rec.Once(context.Background(), Reason{Kind: KindProposal})
	if rep.Result != ResultOK {
		t.Fatalf("pass: %+v", rep)
	}
	if diff := cmp.Diff([]string{dA, dC}, rep.Seeded); diff != "" {
		t.Errorf("seeded (-want +got):\n%s", diff)
	}
	if rep.Image != "nixos/nix@"+dA {
		t.Errorf("config.toml pins %q, want the default branch's %s", rep.Image, dA)
	}
	st := rec.Status()
	if diff := cmp.Diff([]Pin{{File: ".gitlab-ci.yml", Line: 2, Raw: "nixos/nix@" + dC, Digest: dC}}, st.Observed.Projects[0].Proposed); diff != "" {
		t.Errorf("observed proposal pins (-want +got):\n%s", diff)
	}

	// The merge: the default branch pins dC, the proposal branch is gone.
	r.repo.set("group/a", ".gitlab-ci.yml", "build:\n  image: nixos/nix@"+dC+"\n")
	r.repo.mu.Lock()
	delete(r.repo.files, "group/a:.gitlab-ci.yml@hydrafy/nixos-nix-digest")
	r.repo.mu.Unlock()
	r.calls.log = nil
	rep = rec.Once(context.Background(), Reason{Kind: KindWebhook})
	if diff := cmp.Diff([]string{"configure", "config /srv/nix-backup nixos/nix@" + dC}, r.calls.list()); diff != "" {
		t.Errorf("pass after the merge: calls (-want +got):\n%s", diff)
	}
	if rep.Result != ResultOK || !rep.Changed || len(rep.Missing) != 0 {
		t.Errorf("pass after the merge: %+v", rep)
	}
}

func TestDesiredAndPinnedDigests(t *testing.T) {
	obs := Observation{
		Default: "nixos/nix@" + dB,
		Projects: []ProjectPins{
			{Path: "a", Pins: []Pin{{Digest: dA}}, Proposed: []Pin{{Digest: dC}}},
			{Path: "b", Pins: []Pin{{Tag: "latest"}}, Proposed: []Pin{{Digest: dC}, {Tag: "x"}}},
		},
	}
	if diff := cmp.Diff([]string{dA, dB, dC}, desiredDigests(obs)); diff != "" {
		t.Errorf("desired (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{dA, dB}, pinnedDigests(obs)); diff != "" {
		t.Errorf("pinned (-want +got):\n%s", diff)
	}
}
