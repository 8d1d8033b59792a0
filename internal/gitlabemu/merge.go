package gitlabemu

import (
	"fmt"
	"net/http"
)

func (s *Server) acceptMR(c *call) {
	p, mr := s.mergeRequest(c)
	if mr == nil {
		return
	}
	if mr.State != "opened" {
		c.error(http.StatusMethodNotAllowed, "405 Method Not Allowed")
		return
	}
	sha, _ := c.str("sha")
	if sha != "" && sha != p.mrHead(mr) {
		c.error(http.StatusConflict, "SHA does not match HEAD of source branch: "+p.mrHead(mr))
		return
	}
	if v, ok := c.boolean("should_remove_source_branch"); ok {
		mr.RemoveSource = v
	}
	auto, _ := c.boolean("auto_merge")
	mwps, _ := c.boolean("merge_when_pipeline_succeeds")
	if pl := p.latestPipeline(p.mrHead(mr)); (auto || mwps) && pl != nil && !finished(pl.Status) {
		mr.AutoMerge, mr.AutoMergeUser, mr.Updated = true, c.user, s.now().UTC()
		c.json(http.StatusOK, s.mrDetail(p, mr))
		return
	} else if pl != nil && pl.Status == "failed" {
		c.error(http.StatusMethodNotAllowed, "405 Method Not Allowed")
		return
	}
	if _, err := s.merge(p, mr, c.user, ""); err != nil {
		c.error(http.StatusNotAcceptable, "Branch cannot be merged")
		return
	}
	c.json(http.StatusOK, s.mrDetail(p, mr))
}

// merge creates the merge commit on the target branch, marks the MR merged
// and fires the push and merge request hooks.
func (s *Server) merge(p *project, mr *mergeRequest, by *user, msg string) (string, error) {
	srcHead, tgtHead := p.branches[mr.SourceBranch], p.branches[mr.TargetBranch]
	if srcHead == "" || tgtHead == "" {
		return "", fmt.Errorf("merging !%d: source or target branch is gone", mr.IID)
	}
	tree, err := p.threeWay(tgtHead, srcHead)
	if err != nil {
		return "", fmt.Errorf("merging !%d: %w", mr.IID, err)
	}
	if msg == "" {
		msg = fmt.Sprintf("Merge branch '%s' into '%s'\n\n%s\n\nSee merge request %s!%d", mr.SourceBranch, mr.TargetBranch, mr.Title, p.Path, mr.IID)
	}
	cm := s.newCommit(p, []string{tgtHead, srcHead}, tree, by, by, msg)
	p.branches[mr.TargetBranch] = cm.ID
	now := s.now().UTC()
	mr.State, mr.SHA, mr.MergeCommitSHA, mr.MergedAt, mr.MergedBy, mr.Updated = "merged", srcHead, cm.ID, &now, by, now
	mr.AutoMerge = false
	s.firePush(p, by, mr.TargetBranch, tgtHead, cm.ID, []*commit{cm})
	if mr.RemoveSource {
		delete(p.branches, mr.SourceBranch)
		s.firePush(p, by, mr.SourceBranch, srcHead, zeroSHA, nil)
	}
	s.fireMR(p, mr, by, "merge")
	return cm.ID, nil
}

// threeWay merges the trees of two commits file by file against their
// nearest common ancestor; a file changed differently on both sides is a
// conflict.
func (p *project) threeWay(ours, theirs string) (map[string][]byte, error) {
	a, b := p.ancestors(ours), p.ancestors(theirs)
	base, best := "", -1
	for sha, d := range b {
		if da, ok := a[sha]; ok && (best < 0 || da+d < best) {
			base, best = sha, da+d
		}
	}
	var baseTree map[string][]byte
	if base != "" {
		baseTree = p.commits[base].Tree
	}
	o, t := p.commits[ours].Tree, p.commits[theirs].Tree
	out := map[string][]byte{}
	names := map[string]bool{}
	for _, tr := range []map[string][]byte{baseTree, o, t} {
		for n := range tr {
			names[n] = true
		}
	}
	for n := range names {
		bv, bok := baseTree[n]
		ov, ook := o[n]
		tv, tok := t[n]
		same := func(x []byte, xok bool, y []byte, yok bool) bool { return xok == yok && string(x) == string(y) }
		var v []byte
		var ok bool
		switch {
		case same(ov, ook, tv, tok), same(bv, bok, tv, tok):
			v, ok = ov, ook
		case same(bv, bok, ov, ook):
			v, ok = tv, tok
		default:
			return nil, fmt.Errorf("conflict in %s", n)
		}
		if ok {
			out[n] = v
		}
	}
	return out, nil
}
