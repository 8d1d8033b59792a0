package propose

import (
	"testing"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
)

func TestBranchName(t *testing.T) {
	tests := map[string]string{
		"nixos/nix":                        "hydrafy/nixos-nix-digest",
		"registry.example.com:5000/ci/Nix": "hydrafy/registry.example.com-5000-ci-nix-digest",
		"ghcr.io/nixos/nix":                "hydrafy/ghcr.io-nixos-nix-digest",
		"weird..name/x.lock":               "hydrafy/weird.name-x.lock-digest",
	}
	for in, want := range tests {
		if got := BranchName("hydrafy/", in); got != want {
			t.Errorf("BranchName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescriptionGolden(t *testing.T) {
	files := []fileChange{
		{Path: ".gitlab-ci.yml", Refs: 4, Changed: 4, Old: []string{"", digest('0')}},
		{Path: "ci/check.yml", Refs: 3, Changed: 1, Old: []string{""}},
	}
	kept := []fileChange{{Path: ".gitlab-ci.yml", Refs: 2, Changed: 2, Old: []string{digest('0')}, KeptVersions: 1}}
	skipped := []unpinnable{{File: "ci/check.yml", Skipped: pin.Skipped{Line: 12, Raw: "$CI_REGISTRY/nixos/nix:2.24",
		Reason: "its registry comes from $CI_REGISTRY, which hydrafy cannot resolve"}}}
	full := target('1')
	full.VersionTag, full.Seeded = "2.25.0", true
	tests := []struct {
		name    string
		t       Target
		files   []fileChange
		skipped []unpinnable
	}{
		{"full", full, files, skipped},
		{"minimal", Target{Image: "nixos/nix", Digest: digest('1')}, files, nil},
		{"no-version", Target{Image: "nixos/nix", Tag: "latest", Digest: digest('1'), Seeded: true}, kept, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Title(tt.t) + "\n\n" + description(tt.t, tt.files, tt.skipped)
			golden(t, "testdata/description-"+tt.name+".golden.md", got)
			if d := proposedDigest(got); d != tt.t.Digest {
				t.Errorf("marker digest %q", d)
			}
		})
	}
}
