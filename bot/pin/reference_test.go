package pin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in     string
		want   ref
		wantOK bool
	}{
		{"nixos/nix", ref{name: "nixos/nix", repo: repo{"docker.io", "nixos/nix"}}, true},
		{"nixos/nix:2.24", ref{name: "nixos/nix", repo: repo{"docker.io", "nixos/nix"}, tag: "2.24"}, true},
		{"docker.io/nixos/nix@" + oldDigest, ref{name: "docker.io/nixos/nix", repo: repo{"docker.io", "nixos/nix"}, digest: oldDigest}, true},
		{"index.docker.io/nixos/nix:latest@" + oldDigest, ref{name: "index.docker.io/nixos/nix", repo: repo{"docker.io", "nixos/nix"}, tag: "latest", digest: oldDigest}, true},
		{"alpine", ref{name: "alpine", repo: repo{"docker.io", "library/alpine"}}, true},
		{"localhost:5000/a/b:c", ref{name: "localhost:5000/a/b", repo: repo{"localhost:5000", "a/b"}, tag: "c"}, true},
		{"ghcr.io/nixos/nix", ref{name: "ghcr.io/nixos/nix", repo: repo{"ghcr.io", "nixos/nix"}}, true},
		{"nixos/nix:$V", ref{name: "nixos/nix", repo: repo{"docker.io", "nixos/nix"}, tag: "$V"}, true},
		{"nixos/nix:2.24-${ARCH}", ref{name: "nixos/nix", repo: repo{"docker.io", "nixos/nix"}, tag: "2.24-${ARCH}"}, true},
		{"nixos/nix:", ref{}, false},
		{"nixos/nix@sha256:abc", ref{}, false},
		{"nixos/Nix", ref{}, false},
		{"nixos/nix:2.24 ", ref{}, false},
		{"docker pull nixos/nix", ref{}, false},
		{"$NIX_IMAGE", ref{}, false},
		{"nixos//nix", ref{}, false},
		{"nixos/nix:.x", ref{}, false},
		{"", ref{}, false},
	}
	for _, tt := range tests {
		got, ok := parseRef(tt.in)
		if ok != tt.wantOK {
			t.Errorf("parseRef(%q) ok = %v, want %v", tt.in, ok, tt.wantOK)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(ref{}, repo{})); diff != "" {
			t.Errorf("parseRef(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}
