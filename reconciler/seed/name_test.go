package seed

import "testing"

func TestRepository(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"nixos/nix@sha256:abc", "nixos/nix"},
		{"nixos/nix:2.24@sha256:abc", "nixos/nix"},
		{"127.0.0.1:5000/nixos/nix@sha256:abc", "127.0.0.1:5000/nixos/nix"},
		{"127.0.0.1:5000/nixos/nix:latest", "127.0.0.1:5000/nixos/nix"},
		{"127.0.0.1:5000/nixos/nix", "127.0.0.1:5000/nixos/nix"},
	} {
		if got := repository(tc.ref); got != tc.want {
			t.Errorf("repository(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}
