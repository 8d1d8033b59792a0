package propose

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBranchName(t *testing.T) {
	tests := map[string]string{
		"nixos/nix":                        "hydrafy/nixos-nix",
		"registry.example.com:5000/ci/Nix": "hydrafy/registry.example.com-5000-ci-nix",
		"ghcr.io/nixos/nix":                "hydrafy/ghcr.io-nixos-nix",
		"weird..name/x.lock":               "hydrafy/weird.name-x",
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
	tests := []struct {
		name string
		t    Target
	}{
		{"full", target('1')},
		{"minimal", Target{Image: "nixos/nix", Digest: digest('1')}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Title(tt.t) + "\n\n" + description(tt.t, files)
			path := "testdata/description-" + tt.name + ".golden.md"
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("description (-want +got):\n%s", diff)
			}
			if d := proposedDigest(got); d != tt.t.Digest {
				t.Errorf("marker digest %q", d)
			}
		})
	}
}
