package watch

import "time"

// StateVersion is the format version written into State.
const StateVersion = 1

// State is what the watcher observed, kept by the caller between checks
// (hydrafy stores it as JSON in <state_dir>/watch.json). The zero value is
// a valid empty state.
type State struct {
	Version int `json:"version"`
	// Tags maps a fully qualified tag reference
	// ("index.docker.io/nixos/nix:latest") to what was seen there.
	Tags map[string]Observation `json:"tags,omitempty"`
	// Releases caches the release tags (X.Y.Z) of the repository that
	// were resolved to find a digest's version: tag → digest.
	Releases map[string]string `json:"releases,omitempty"`
}

// Observation is one tracked tag as last seen.
type Observation struct {
	// Digest is the manifest (index) digest the tag pointed at.
	Digest string `json:"digest"`
	// MediaType is the manifest's media type.
	MediaType string `json:"media_type,omitempty"`
	// FirstSeen is when Digest was first seen at this tag; a new digest
	// resets it.
	FirstSeen time.Time `json:"first_seen"`
	// LastChecked is when the tag was last resolved.
	LastChecked time.Time `json:"last_checked"`
	// Platforms are the platforms Digest provides ("linux/amd64"), sorted.
	Platforms []string `json:"platforms"`
	// Created is the image creation time from the first platform's config.
	Created time.Time `json:"created,omitzero"`
	// NixVersion is the Nix version from the image labels, when labelled.
	NixVersion string `json:"nix_version,omitempty"`
	// VersionTag is the newest release tag (X.Y.Z) that pointed at Digest
	// when last looked up; "" when none did.
	VersionTag string `json:"version_tag,omitempty"`
}
