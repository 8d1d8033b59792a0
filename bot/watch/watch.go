// Package watch follows one image tag in a registry (a moving tag such as
// nixos/nix:latest, or the newest release in a semver range) and decides
// when its digest is ready to propose: every wanted platform present and
// the digest unchanged for the settle time.
//
// It resolves digests with manifest HEAD requests, which Docker Hub does
// not count against pull limits, and GETs a manifest only when a digest is
// new (to learn its platforms) or where HEAD is unsupported.
package watch

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"gitlab.com/hydrafy/hydrafy/internal/regerr"
)

// Result is the outcome of one Check.
type Result struct {
	// Image is the repository as configured ("nixos/nix").
	Image string
	// Tag is the tag that was resolved: the configured tag, or the newest
	// release tag in the semver range.
	Tag string
	// Digest is the manifest (index) digest the tag points at.
	Digest string
	// Platforms are the platforms the digest provides, sorted.
	Platforms []string
	// MissingPlatforms are the wanted platforms it lacks.
	MissingPlatforms []string
	// FirstSeen is when Digest was first seen at Tag.
	FirstSeen time.Time
	// StableFor is how long Digest has been seen unchanged.
	StableFor time.Duration
	// Ready says the digest may be proposed; Reason says why or why not.
	Ready  bool
	Reason string
	// Wait is how long until it could become ready without a new digest;
	// 0 when ready or when only a new digest can help.
	Wait time.Duration
	// Changed says the digest differs from the one in the previous State
	// (or the tag had none there).
	Changed bool
	// Created is the image creation time from the config of the first
	// wanted platform's image; zero when the config has none.
	Created time.Time
	// NixVersion is the Nix version from the image labels, when labelled.
	NixVersion string
	// VersionTag is the newest release tag (X.Y.Z) of the repository that
	// points at Digest; "" when none does (yet).
	VersionTag string
}

// Reference returns the pinned reference, "nixos/nix:latest@sha256:…".
func (r Result) Reference() string { return r.Image + ":" + r.Tag + "@" + r.Digest }

// Check resolves the tracked tag now and decides whether its digest is
// ready to propose. It returns the next State to store: prev's entry for the
// tag updated, other tags dropped. On error prev is returned unchanged and
// nothing may be proposed.
func (w *Watcher) Check(ctx context.Context, prev State, now time.Time) (Result, State, error) {
	ro, err := w.session(ctx)
	if err != nil {
		return Result{}, prev, fmt.Errorf("setting up registry access: %w", err)
	}
	tag, tags, err := w.tag(ro)
	if err != nil {
		return Result{}, prev, err
	}
	ref := w.repo.Tag(tag)
	shown := w.opts.Image + ":" + tag
	desc, manifest, err := w.head(ro, ref)
	if err != nil {
		return Result{}, prev, failed("resolving", shown, err)
	}
	key := ref.Name()
	old, seen := prev.Tags[key]
	changed := !seen || old.Digest != desc.Digest.String()
	obs := old
	if changed {
		d, err := w.inspect(ctx, ro, w.repo, desc, manifest)
		if err != nil {
			return Result{}, prev, failed("inspecting", shown+"@"+desc.Digest.String(), err)
		}
		obs = Observation{
			Digest:     desc.Digest.String(),
			MediaType:  string(desc.MediaType),
			FirstSeen:  now,
			Platforms:  d.platforms,
			Created:    d.created.Time,
			NixVersion: d.nixVersion,
		}
	}
	obs.LastChecked = now

	missing := missingPlatforms(obs.Platforms, w.platforms)
	ready, wait, reason := decide(obs, missing, w.opts.Settle, now)
	releases := maps.Clone(prev.Releases)
	if releases == nil {
		releases = map[string]string{}
	}
	switch {
	case releaseTag.MatchString(tag):
		obs.VersionTag = tag
	case changed || (obs.VersionTag == "" && !ready):
		// A new digest, or one still settling without a release tag (a
		// release's tags are pushed within minutes of each other).
		v, err := w.versionTag(ro, tags, obs.Digest, releases)
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, prev, ctx.Err()
			}
			w.log.Warn("looking up the release tag of a digest", "image", w.opts.Image, "digest", obs.Digest, "err", err)
		}
		obs.VersionTag = v
	}
	w.log.Debug("checked tag", "ref", shown, "digest", obs.Digest, "changed", changed, "ready", ready, "reason", reason)
	res := Result{
		Image:            w.opts.Image,
		Tag:              tag,
		Digest:           obs.Digest,
		Platforms:        slices.Clone(obs.Platforms),
		MissingPlatforms: missing,
		FirstSeen:        obs.FirstSeen,
		StableFor:        stableFor(obs, now),
		Ready:            ready,
		Reason:           reason,
		Wait:             wait,
		Changed:          changed,
		Created:          obs.Created,
		NixVersion:       obs.NixVersion,
		VersionTag:       obs.VersionTag,
	}
	return res, State{Version: StateVersion, Tags: map[string]Observation{key: obs}, Releases: releases}, nil
}

// tag returns the tag to resolve: the configured one, or the newest release
// in the semver range, which needs the repository's tag list (returned
// too, so that a check lists tags at most once).
func (w *Watcher) tag(ro []remote.Option) (string, []string, error) {
	if w.track.match == nil {
		return w.track.tag, nil, nil
	}
	tags, err := remote.List(w.repo, ro...)
	if err != nil {
		return "", nil, failed("listing tags of", w.opts.Image, err)
	}
	t := pickTag(tags, w.track.match)
	if t == "" {
		return "", nil, fmt.Errorf("no release tag of %s matches %q among %d tags", w.opts.Image, w.track.rng, len(tags))
	}
	return t, tags, nil
}

// failed names the action and what it was done to; a registry that kept
// answering 429 or 5xx is reported without the request URL around it.
func failed(action, what string, err error) error {
	if se, ok := statusError(err); ok {
		err = se
	}
	if msg, ok := regerr.Describe(registryOf(what), err); ok {
		return &lineError{msg: fmt.Sprintf("%s %s: %s", action, what, msg), err: err}
	}
	return fmt.Errorf("%s %s: %w", action, what, err)
}

// registryOf is the registry host of a reference as shown ("host/repo:tag"),
// as go-containerregistry names it.
func registryOf(shown string) string {
	if r, err := name.ParseReference(shown); err == nil {
		return r.Context().RegistryStr()
	}
	if r, err := name.NewRepository(shown); err == nil {
		return r.RegistryStr()
	}
	return shown
}

// lineError shows a one-line message while keeping the error it wraps for
// errors.Is and errors.As.
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }
