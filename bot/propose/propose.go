// Package propose keeps one merge request per watched GitLab project that
// pins every reference of the tracked image to the newest digest. A pass
// reads each project's CI files on its default branch, rewrites them with
// package pin, and creates or refreshes the branch and merge request only
// when something differs: a pass with nothing new makes no write calls.
package propose

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/bot/pin"
	"gitlab.com/hydrafy/hydrafy/config"
)

// Target is the image version to propose, as the watcher resolved it.
type Target struct {
	// Image is the repository, such as "nixos/nix".
	Image string
	// Tag is the tracked tag the digest was resolved from ("latest").
	Tag string
	// Digest is the multi-arch index digest to pin.
	Digest string
	// Platforms lists the index's platforms ("linux/amd64").
	Platforms []string
	// Created is the image's creation time; zero when unknown.
	Created time.Time
	// NixVersion is the Nix version from the image labels; "" when unknown.
	NixVersion string
	// VersionTag is the release tag (X.Y.Z) that points at Digest; ""
	// when none is known. References that carry a version tag get it.
	VersionTag string
	// Seeded says the runner hosts' store holds the digest's store
	// already (it was seeded before proposing): the description says
	// what merging does accordingly.
	Seeded bool
}

// Author is the identity of the commits the proposer makes. Commits on a
// proposal branch by anyone else mean a human pushed there.
type Author struct {
	Name, Email string
}

// Options configures a Proposer.
type Options struct {
	// Projects are the watched projects.
	Projects []config.Project
	// Propose holds the branch prefix, max_open, labels and automerge.
	Propose config.Propose
	// Author signs the proposer's commits; zero means DefaultAuthor.
	Author Author
}

// DefaultAuthor is the commit identity used when Options.Author is zero.
var DefaultAuthor = Author{Name: "hydrafy", Email: "hydrafy@noreply.invalid"}

// OptionsFrom takes the proposer's options from a loaded configuration.
func OptionsFrom(c config.Config) Options {
	return Options{Projects: c.Projects, Propose: c.Propose}
}

// Proposer opens and maintains the merge requests. It is stateless between
// passes apart from the State value its caller keeps.
type Proposer struct {
	gl   *gitlab.Client
	opts Options
	log  *slog.Logger
}

// New returns a Proposer that talks to GitLab through gl.
func New(gl *gitlab.Client, opts Options, log *slog.Logger) *Proposer {
	if opts.Author == (Author{}) {
		opts.Author = DefaultAuthor
	}
	if opts.Propose.BranchPrefix == "" {
		opts.Propose.BranchPrefix = config.Default().Propose.BranchPrefix
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proposer{gl: gl, opts: opts, log: log}
}

// Pass runs one proposal pass for target over every watched project and
// returns a report per project and the state to keep for the next pass.
// Errors of one project are reported in its entry and do not stop the
// others; the error is for a target that cannot be proposed at all, in
// which case nothing was read or written.
func (p *Proposer) Pass(ctx context.Context, target Target, prev State) (Report, State, error) {
	if err := target.Validate(); err != nil {
		return Report{}, prev, err
	}
	next := prev.clone()
	plans := make([]*plan, 0, len(p.opts.Projects))
	open := 0
	for _, proj := range p.opts.Projects {
		log := p.log.With("project", proj.Path)
		pl := p.survey(ctx, proj, target, log)
		for _, d := range pl.closedDigests {
			next.decline(proj.Path, d)
		}
		pl.declined = next.declined(proj.Path)
		if pl.openMR != nil {
			open++
		}
		plans = append(plans, pl)
	}
	rep := Report{Image: target.Image, Digest: target.Digest}
	for _, pl := range plans {
		if pl.err == nil {
			p.act(ctx, pl, target, &open)
			p.supersede(ctx, pl)
		}
		rep.Projects = append(rep.Projects, pl.report())
	}
	return rep, next, nil
}

// Validate reports why t cannot be proposed: the image and digest must be
// what pin accepts.
func (t Target) Validate() error {
	o := t.pinOptions()
	o.Tag = t.Tag // checked, not used
	if _, _, err := pin.Rewrite(nil, o); err != nil {
		return fmt.Errorf("proposing %s@%s: %w", t.Image, t.Digest, err)
	}
	return nil
}

// pinOptions are the rewrite of t: the digest, and its release for the
// references that carry a version tag; other tags stay as they are.
func (t Target) pinOptions() pin.Options {
	return pin.Options{Image: t.Image, Digest: t.Digest, VersionTag: t.VersionTag}
}

// Preview reads every watched project as a pass would and reports what
// it would propose, with each file before and after, writing nothing.
func (p *Proposer) Preview(ctx context.Context, target Target) (Report, error) {
	if err := target.Validate(); err != nil {
		return Report{}, err
	}
	rep := Report{Image: target.Image, Digest: target.Digest}
	for _, proj := range p.opts.Projects {
		pl := p.survey(ctx, proj, target, p.log.With("project", proj.Path))
		switch {
		case pl.err != nil:
		case len(pl.files) > 0:
			pl.action = WouldPropose
			pl.mr = pl.openMR
		case pl.refs == 0:
			pl.action = NoReferences
		default:
			pl.action = UpToDate
		}
		rep.Projects = append(rep.Projects, pl.report())
	}
	return rep, nil
}
