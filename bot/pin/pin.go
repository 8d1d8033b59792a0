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
	// VersionTag, when set, is a version tag that Digest is known to
	// carry ("2.25.0"): references whose tag is a version (IsVersionTag)
	// get it; "latest", other tags and references without one keep theirs.
	// Tag takes precedence.
	VersionTag string
}

// Change describes one rewritten reference.
type Change struct {
	// Line is the 1-based line of the reference in the input.
	Line int
	// Old is the reference as written in the input (inside any quotes);
	// New is what replaced it.
	Old, New string
	// Tag is the tag the new reference carries, "" when none.
	Tag string
}

// Skipped is a reference of the image that cannot be pinned, such as one
// whose registry comes from a variable defined outside the file.
type Skipped struct {
	// Line is the 1-based line of the reference.
	Line int
	// Raw is the text as written (inside any quotes).
	Raw string
	// Reason says why it cannot be pinned.
	Reason string
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
	for _, tag := range []string{opts.Tag, opts.VersionTag} {
		if tag != "" && !plainTagRE.MatchString(tag) {
			return repo{}, fmt.Errorf("invalid tag %q: want letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", tag)
		}
	}
	if opts.VersionTag != "" && !IsVersionTag(opts.VersionTag) {
		return repo{}, fmt.Errorf("invalid version tag %q: want a version such as 2.25.0", opts.VersionTag)
	}
	return r, nil
}
