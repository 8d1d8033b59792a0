package propose

import (
	"context"
	"errors"
	"net/http"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// adoptRacing handles GitLab's 409 to a merge request create: "Another
// open merge request already exists for this source branch". Another
// proposer on the same projects (a second bot started by mistake) opened
// it between this pass's survey and its create. The pass takes that merge
// request as the project's one, to refresh in place, and reports whether
// it did; any other error is not a race.
func (p *Proposer) adoptRacing(ctx context.Context, pl *plan, err error) bool {
	var er *gitlab.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusConflict {
		return false
	}
	mrs, _, lerr := p.gl.MergeRequests.ListProjectMergeRequests(pl.proj.Path, &gitlab.ListProjectMergeRequestsOptions{
		SourceBranch: &pl.branch, TargetBranch: &pl.defaultBranch, State: gitlab.Ptr("opened")}, gitlab.WithContext(ctx))
	if lerr != nil || len(mrs) == 0 {
		return false
	}
	pl.openMR, pl.mr = mrs[0], mrs[0]
	pl.log.Info("another proposer opened the merge request first; updating it", "iid", mrs[0].IID)
	return true
}
