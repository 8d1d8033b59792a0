package reconciler

import (
	"context"
	"fmt"
	"net/http"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// GitLabRepo reads projects through the GitLab REST API.
type GitLabRepo struct {
	Client *gitlab.Client
}

var _ Repo = GitLabRepo{}

// DefaultBranch returns the project's default branch.
func (g GitLabRepo) DefaultBranch(ctx context.Context, project string) (string, error) {
	p, resp, err := g.Client.Projects.GetProject(project, nil, gitlab.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("getting project %s: %w", project, classify(resp, err))
	}
	if p.DefaultBranch == "" {
		return "", fmt.Errorf("project %s has no default branch", project)
	}
	return p.DefaultBranch, nil
}

// ReadFile returns a file's content at ref, or ErrNotFound.
func (g GitLabRepo) ReadFile(ctx context.Context, project, file, ref string) ([]byte, error) {
	b, resp, err := g.Client.RepositoryFiles.GetRawFile(project, file, &gitlab.GetRawFileOptions{Ref: gitlab.Ptr(ref)}, gitlab.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, classify(resp, err))
	}
	return b, nil
}

// classify marks the API answers that retrying cannot fix: a token GitLab
// refuses, a project it does not know.
func classify(resp *gitlab.Response, err error) error {
	if resp != nil && resp.Response != nil {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return Terminal(err)
		}
	}
	return err
}

var _ BranchLister = GitLabRepo{}

// Branches returns the names of every branch of the project, page by page.
func (g GitLabRepo) Branches(ctx context.Context, project string) ([]string, error) {
	opt := &gitlab.ListBranchesOptions{ListOptions: gitlab.ListOptions{PerPage: 100, Page: 1}}
	var out []string
	for {
		bs, resp, err := g.Client.Branches.ListBranches(project, opt, gitlab.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("listing branches of %s: %w", project, classify(resp, err))
		}
		for _, b := range bs {
			out = append(out, b.Name)
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}
