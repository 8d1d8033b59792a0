package reconciler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPinFind(t *testing.T) {
	d := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	src := []byte("build:\n  image: nixos/nix:2.24@" + d + "\ntest:\n  image: \"docker.io/nixos/nix:latest\"\nother:\n  image: nixos/nix-unstable@" + d + "\n")
	got, err := PinFind(src, "nixos/nix")
	if err != nil {
		t.Fatal(err)
	}
	want := []Pin{
		{Line: 2, Raw: "nixos/nix:2.24@" + d, Tag: "2.24", Digest: d},
		{Line: 4, Raw: "docker.io/nixos/nix:latest", Tag: "latest"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PinFind (-want +got):\n%s", diff)
	}
}
