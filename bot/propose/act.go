package propose

import (
	"context"
	"errors"
	"slices"
)

// act brings the project's branch and merge request in line with t. open
// counts the open proposals across projects, for max_open.
func (p *Proposer) act(ctx context.Context, pl *plan, t Target, open *int) {
	pl.mr = pl.openMR
	if len(pl.files) == 0 {
		pl.action = UpToDate
		if pl.refs == 0 {
			pl.action = NoReferences
		}
		return
	}
	if slices.Contains(pl.declined, t.Digest) {
		pl.action = Declined
		return
	}
	head, err := p.branchHead(ctx, pl)
	if err != nil {
		pl.fail("reading branch "+pl.branch, err)
		return
	}
	human := head != nil && !p.isBot(head)
	if human && pl.openMR != nil {
		p.tellHuman(ctx, pl, t)
		return
	}
	if human && pl.pastMRs == 0 {
		pl.fail("updating branch "+pl.branch, errors.New("the branch holds commits by others and has no merge request of hydrafy's: delete or rename it"))
		return
	}
	if pl.openMR == nil && p.opts.Propose.MaxOpen > 0 && *open >= p.opts.Propose.MaxOpen {
		pl.action = Capped
		return
	}
	current, err := p.branchCurrent(ctx, pl, head, human, t)
	if err != nil {
		pl.fail("reading branch "+pl.branch, err)
		return
	}
	pushed := false
	if !current {
		if err := p.commit(ctx, pl, t); err != nil {
			pl.fail("committing to "+pl.branch, err)
			return
		}
		pushed = true
	}
	opened := false
	if pl.openMR == nil {
		// A racing proposer's merge request, opened since the survey, is
		// adopted and refreshed below.
		err := p.openMR(ctx, pl, t)
		if err != nil && !p.adoptRacing(ctx, pl, err) {
			pl.fail("opening merge request", err)
			return
		}
		*open++
		opened = err == nil
	}
	if opened {
		pl.action = Opened
	} else {
		changed, err := p.refreshMR(ctx, pl, t)
		if err != nil {
			pl.fail("updating merge request !"+itoa(pl.openMR.IID), err)
			return
		}
		pl.action = Unchanged
		if changed || pushed {
			pl.action = Updated
		}
	}
	p.autoMerge(ctx, pl)
}
