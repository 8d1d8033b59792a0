package pin

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRewriteUnusualYAML covers syntax that real CI files rarely use but
// that must not confuse the rewrite: other line breaks, tags, properties
// on their own lines, escapes, directives, block scalars. In want, "@N"
// stands for "@" and the new digest.
func TestRewriteUnusualYAML(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"carriage returns", "a: nixos/nix\rb: 'nixos/nix'\r", "a: nixos/nix@N\rb: 'nixos/nix@N'\r"},
		{"unicode line breaks", "a: x\u0085b: nixos/nix\u2028c: \"nixos/nix\"\u2029", "a: x\u0085b: nixos/nix@N\u2028c: \"nixos/nix@N\"\u2029"},
		{"byte order mark", "\ufeffa: nixos/nix\n", "\ufeffa: nixos/nix@N\n"},
		{"verbatim tag", "a: !<tag:yaml.org,2002:str> nixos/nix\n", "a: !<tag:yaml.org,2002:str> nixos/nix@N\n"},
		{"properties on their own lines", "a: &x # c\n  !!str # d\n  nixos/nix\n", "a: &x # c\n  !!str # d\n  nixos/nix@N\n"},
		{"multi-byte text before", "é: {ü: \"ß\", i: [\"é\", nixos/nix]}\n", "é: {ü: \"ß\", i: [\"é\", nixos/nix@N]}\n"},
		{"complex key", "- ? a\n  : nixos/nix\n", "- ? a\n  : nixos/nix@N\n"},
		{"tag and anchor in flow", "a: [!!str &y nixos/nix, *y]\n", "a: [!!str &y nixos/nix@N, *y]\n"},
		{"escape", "a: \"nixos\\x2fnix\"\n", "a: \"nixos/nix@N\"\n"},
		{"tab separator", "a:\tnixos/nix\t# c\n", "a:\tnixos/nix@N\t# c\n"},
		{"directives and document ends", "%YAML 1.1\n---\na: nixos/nix\n...\n---\nb: nixos/nix\n", "%YAML 1.1\n---\na: nixos/nix@N\n...\n---\nb: nixos/nix@N\n"},
		{"block scalar kept newline is no reference", "a: |+\n  nixos/nix\n", "a: |+\n  nixos/nix\n"},
		{"stripped block scalar", "a: |-\n  nixos/nix\n\n\n", "a: |-\n  nixos/nix@N\n\n\n"},
		{"indentation indicator", "a: >2-\n  nixos/nix\n", "a: >2-\n  nixos/nix@N\n"},
		{"trailing blanks", "a:\n- nixos/nix\n-  nixos/nix  \n", "a:\n- nixos/nix@N\n-  nixos/nix@N  \n"},
		{"explicit key in flow", "a: {? nixos/nix : nixos/nix}\n", "a: {? nixos/nix : nixos/nix@N}\n"},
		{"empty", "", ""},
		{"comments only", "# image: nixos/nix\n", "# image: nixos/nix\n"},
	}
	opts := Options{Image: "nixos/nix", Digest: newDigest}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changes, err := Rewrite([]byte(tt.src), opts)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			want := strings.ReplaceAll(tt.want, "@N", "@"+newDigest)
			if diff := cmp.Diff(want, string(out)); diff != "" {
				t.Errorf("Rewrite mismatch (-want +got):\n%s", diff)
			}
			checkEdits(t, []byte(tt.src), out, changes, opts)
		})
	}
}
