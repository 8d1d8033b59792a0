package pin

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOtherRepositoriesUntouched puts references of other repositories in
// every place a reference of the image could be, and expects no change.
func TestOtherRepositoriesUntouched(t *testing.T) {
	others := []string{
		"nixos/nix-unstable",
		"nixos/nix-unstable:latest",
		"ghcr.io/nixos/nix",
		"ghcr.io/nixos/nix:2.24",
		"mynixos/nix",
		"nixos/nixpkgs",
		"nixos/nix/extra",
		"nix",
		"library/nix",
		"alpine@" + oldDigest,
		"alpine:3.20",
		"registry.gitlab.com/nixos/nix",
		"localhost:5000/nixos/nix",
		"docker.io/mynixos/nix",
		"NixOS/nix",
		"$NIX_IMAGE",
		"docker run nixos/nix",
	}
	forms := []string{
		"image: %s\n",
		"image: \"%s\"\n",
		"image: '%s'\n",
		"image: {name: \"%s\"}\n",
		"image:\n  name: '%s'\n  entrypoint: [\"\"]\n",
		"services:\n  - '%s'\n  - name: \"%s\"\n",
		"variables:\n  NIX_IMAGE: \"%s\"\n",
		"job: {image: \"%s\", services: [\"%s\"]}\n",
		"# image: nixos/nix\nimage: \"%s\" # nixos/nix\n",
	}
	// Not references of the image either: spaces inside quotes, a key, a
	// script line, a job name, a project.
	whole := []string{
		"image: \"nixos/nix:2.24 \"\n",
		"image: ' nixos/nix'\n",
		"nixos/nix: {script: [nixos/nix]}\n",
		"job:\n  script:\n    - docker pull nixos/nix\n",
		"job:\n  needs: [nixos/nix]\n  extends: nixos/nix\n  stage: nixos/nix\n",
		"include:\n  - project: nixos/nix\n    file: ci.yml\n  - nixos/nix\n",
		"include: nixos/nix\n",
		"job:\n  trigger: nixos/nix\n",
		"image: !!binary bml4b3Mvbml4\n",
	}
	for _, src := range whole {
		forms = append(forms, strings.ReplaceAll(src, "%", "%%"))
	}
	for _, other := range others {
		for _, form := range forms {
			src := []byte(strings.ReplaceAll(form, "%s", other))
			t.Run(fmt.Sprintf("%s/%q", other, form), func(t *testing.T) {
				out, changes, err := Rewrite(src, Options{Image: "nixos/nix", Digest: newDigest})
				if err != nil {
					t.Fatalf("Rewrite: %v", err)
				}
				if len(changes) != 0 || !bytes.Equal(out, src) {
					t.Errorf("Rewrite changed %q to %q (%v)", src, out, changes)
				}
			})
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	good := Options{Image: "nixos/nix", Digest: newDigest}
	tests := []struct {
		name    string
		src     string
		opts    Options
		wantErr string
	}{
		{"digest without algorithm", "image: nixos/nix\n", Options{Image: "nixos/nix", Digest: newDigest[7:]}, `invalid digest "11507a0e`},
		{"short digest", "image: nixos/nix\n", Options{Image: "nixos/nix", Digest: "sha256:abc"}, `invalid digest "sha256:abc"`},
		{"upper-case digest", "image: nixos/nix\n", Options{Image: "nixos/nix", Digest: strings.ToUpper(newDigest)}, "invalid digest"},
		{"sha512 digest", "image: nixos/nix\n", Options{Image: "nixos/nix", Digest: "sha512:" + strings.Repeat("a", 128)}, "invalid digest"},
		{"image with tag", "image: nixos/nix\n", Options{Image: "nixos/nix:2.24", Digest: newDigest}, `invalid image "nixos/nix:2.24"`},
		{"empty image", "image: nixos/nix\n", Options{Digest: newDigest}, `invalid image ""`},
		{"bad tag", "image: nixos/nix\n", Options{Image: "nixos/nix", Digest: newDigest, Tag: "-x"}, `invalid tag "-x"`},
		{"invalid yaml", "build:\n  image: nixos/nix\n script: [\n", good, "parsing: yaml: line 2: did not find expected key"},
		{"tab indentation", "build:\n\timage: nixos/nix\n", good, "parsing: yaml: line 2:"},
		{"utf-16", "\xff\xfei\x00m\x00", good, "UTF-16"},
		{"reference split over lines", "image: \"nixos/\\\n  nix\"\n", good, "spans lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changes, err := Rewrite([]byte(tt.src), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Rewrite error = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			if out != nil || changes != nil {
				t.Errorf("Rewrite returned output %q and changes %v with its error", out, changes)
			}
		})
	}
}

func TestReferences(t *testing.T) {
	src := "variables:\r\n  NIX: \"nixos/nix:2.24@" + oldDigest + "\" # nixos/nix:old\r\n" +
		"build:\r\n  image: &img nixos/nix\r\n  services: [*img, 'docker.io/nixos/nix:latest', nixos/nix-unstable]\r\n"
	got, err := References([]byte(src), "nixos/nix")
	if err != nil {
		t.Fatal(err)
	}
	want := []Reference{
		{Line: 2, Raw: "nixos/nix:2.24@" + oldDigest, Tag: "2.24", Digest: oldDigest},
		{Line: 4, Raw: "nixos/nix"},
		{Line: 5, Raw: "docker.io/nixos/nix:latest", Tag: "latest"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("References mismatch (-want +got):\n%s", diff)
	}
	if _, err := References([]byte(src), "nixos/nix@"+oldDigest); err == nil {
		t.Error("References accepted an image with a digest")
	}
}
