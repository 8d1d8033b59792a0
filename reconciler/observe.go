package reconciler

import (
	"context"
	"errors"
	"fmt"
)

// observe reads every watched project's default branch. A project that
// cannot be read keeps its last observed pins, marked with the error:
// seeding only adds, so acting on the last known pins is safe.
func (p *passRun) observe(ctx context.Context) Observation {
	r := p.r
	r.mu.Lock()
	prev := map[string]ProjectPins{}
	for _, pp := range r.state.Observed.Projects {
		prev[pp.Path] = pp
	}
	candidate := r.state.Candidate
	r.mu.Unlock()

	obs := Observation{At: r.opts.Now(), Default: r.opts.DefaultImage, Candidate: candidate}
	var errs []error
	start := r.opts.Now()
	for _, proj := range r.opts.Projects {
		pp, err := p.readProject(ctx, proj)
		if err != nil {
			errs = append(errs, err)
			pp = prev[proj.Path]
			pp.Path = proj.Path
			pp.Error = err.Error()
		}
		obs.Projects = append(obs.Projects, pp)
	}
	p.record(Step{Name: "read-pins", Started: start}, errors.Join(errs...))
	return obs
}

func (p *passRun) readProject(ctx context.Context, proj Project) (ProjectPins, error) {
	r := p.r
	pp := ProjectPins{Path: proj.Path, Pins: []Pin{}}
	branch, err := r.opts.Repo.DefaultBranch(ctx, proj.Path)
	if err != nil {
		return pp, fmt.Errorf("reading default branch of %s: %w", proj.Path, err)
	}
	pp.Branch = branch
	if pp.Pins, err = p.readPins(ctx, proj, branch); err != nil {
		return pp, err
	}
	if b := r.opts.ProposalBranch; b != "" && b != branch {
		// A project without an open proposal has no such branch: every
		// file is then not found, and the branch adds nothing.
		if pp.Proposed, err = p.readPins(ctx, proj, b); err != nil {
			return pp, err
		}
		if len(pp.Proposed) == 0 {
			pp.Proposed = nil
		}
	}
	return pp, nil
}

// readPins returns the references of the watched image in proj's files at
// ref; a file missing there has none.
func (p *passRun) readPins(ctx context.Context, proj Project, ref string) ([]Pin, error) {
	return readPins(ctx, p.r.opts.Repo, p.r.opts.Find, p.r.opts.Image, proj, ref)
}

func readPins(ctx context.Context, repo Repo, find FindFunc, image string, proj Project, ref string) ([]Pin, error) {
	out := []Pin{}
	for _, f := range proj.Files {
		src, err := repo.ReadFile(ctx, proj.Path, f, ref)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("reading %s of %s at %s: %w", f, proj.Path, ref, err)
		}
		pins, err := find(src, image)
		if err != nil {
			return out, Terminal(fmt.Errorf("finding %s in %s of %s at %s: %w", image, f, proj.Path, ref, err))
		}
		for _, pin := range pins {
			pin.File = f
			out = append(out, pin)
		}
	}
	return out, nil
}
