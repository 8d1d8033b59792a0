// Package pin rewrites the image references in CI files so that every
// reference of one repository carries a given digest. The rewrite works on
// the text, never by re-serialising YAML: comments, quoting, indentation,
// anchors, line endings and a missing final newline stay byte for byte. The
// result is parsed again and checked before it is returned.
package pin

import (
	"fmt"
	"regexp"
)

// Options says which repository to pin and to what.
type Options struct {
	// Image is the repository, such as "nixos/nix" or
	// "registry.example.com/group/nix", without tag or digest.
	Image string
	// Digest is the digest to pin: "sha256:" and 64 lowercase hex digits.
	Digest string
	// Tag, when set, also replaces the tag of references that carry one
	// (repo:tag and repo:tag@digest). References without a tag get none.
	Tag string
}

// Change describes one rewritten reference.
type Change struct {
	// Line is the 1-based line of the reference in the input.
	Line int
	// Old is the reference as written in the input (inside any quotes);
	// New is what replaced it.
	Old, New string
}

// Reference is one reference of the image found in a file.
type Reference struct {
	// Line is the 1-based line of the reference.
	Line int
	// Raw is the reference as written (inside any quotes).
	Raw string
	// Tag is the reference's tag, or "" when it has none.
	Tag string
	// Digest is the reference's digest, or "" when it is not pinned.
	Digest string
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// validate checks opts and returns the repository that opts.Image names.
func (opts Options) validate() (repo, error) {
	r, err := parseImage(opts.Image)
	if err != nil {
		return repo{}, err
	}
	if !digestRE.MatchString(opts.Digest) {
		return repo{}, fmt.Errorf("invalid digest %q: want sha256: followed by 64 lowercase hex digits", opts.Digest)
	}
	if opts.Tag != "" && !plainTagRE.MatchString(opts.Tag) {
		return repo{}, fmt.Errorf("invalid tag %q: want letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", opts.Tag)
	}
	return r, nil
}
