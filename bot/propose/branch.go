package propose

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// branchHead is the head commit of the proposal branch, nil if none.
func (p *Proposer) branchHead(ctx context.Context, pl *plan) (*gitlab.Commit, error) {
	b, _, err := p.gl.Branches.GetBranch(pl.proj.Path, pl.branch, gitlab.WithContext(ctx))
	if errors.Is(err, gitlab.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b.Commit, nil
}

// branchCurrent reports whether the proposal branch already holds the
// proposer's commit for t with the files as they should be. A default
// branch that moved on without touching the files needs no new commit:
// pipelines are not re-run for nothing.
func (p *Proposer) branchCurrent(ctx context.Context, pl *plan, head *gitlab.Commit, human bool, t Target) (bool, error) {
	if head == nil || human || commitDigest(head.Message) != t.Digest {
		return false, nil
	}
	if len(head.ParentIDs) > 0 && head.ParentIDs[0] == pl.defaultHead {
		return true, nil
	}
	for _, f := range pl.files {
		got, _, err := p.gl.RepositoryFiles.GetFile(pl.proj.Path, f.Path, &gitlab.GetFileOptions{Ref: &pl.branch}, gitlab.WithContext(ctx))
		if errors.Is(err, gitlab.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if content, err := base64.StdEncoding.DecodeString(got.Content); err != nil || string(content) != f.Content {
			return false, nil
		}
	}
	return true, nil
}

// isBot reports whether c is a commit the proposer made.
func (p *Proposer) isBot(c *gitlab.Commit) bool {
	return strings.EqualFold(c.AuthorEmail, p.opts.Author.Email) && commitDigest(c.Message) != ""
}

// commit (re)creates the branch from the default branch head with one
// commit that pins every file.
func (p *Proposer) commit(ctx context.Context, pl *plan, t Target) error {
	var actions []*gitlab.CommitActionOptions
	var names []string
	for _, f := range pl.files {
		actions = append(actions, &gitlab.CommitActionOptions{
			Action: gitlab.Ptr(gitlab.FileUpdate), FilePath: gitlab.Ptr(f.Path), Content: gitlab.Ptr(f.Content)})
		names = append(names, f.Path)
	}
	_, _, err := p.gl.Commits.CreateCommit(pl.proj.Path, &gitlab.CreateCommitOptions{
		Branch: &pl.branch, StartSHA: &pl.defaultHead, Force: gitlab.Ptr(true),
		CommitMessage: gitlab.Ptr(commitMessage(t, names)), Actions: actions,
		AuthorName: &p.opts.Author.Name, AuthorEmail: &p.opts.Author.Email,
	}, gitlab.WithContext(ctx))
	if err == nil {
		pl.log.Info("pinned on branch", "branch", pl.branch, "digest", t.Digest)
	}
	return err
}
