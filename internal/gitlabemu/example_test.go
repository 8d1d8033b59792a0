package gitlabemu_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
)

// Example seeds a project, lets the real client open a merge request and
// merges it as a user would.
func Example() {
	emu := gitlabemu.New(gitlabemu.Options{})
	ts := httptest.NewServer(emu.Handler())
	defer ts.Close()
	defer emu.Close()

	emu.AddToken("glpat-demo", "hydrafy-bot")
	emu.AddUser("alice", "Alice", "alice@example.com")
	if _, err := emu.AddProject("team/app", "main", map[string]string{".gitlab-ci.yml": "image: nixos/nix\n"}); err != nil {
		panic(err)
	}
	if _, err := emu.Push("team/app", "topic", "alice", "Pin the image", map[string]string{
		".gitlab-ci.yml": "image: nixos/nix@sha256:1111111111111111111111111111111111111111111111111111111111111111\n",
	}); err != nil {
		panic(err)
	}

	gl, err := gitlab.NewClient("glpat-demo", gitlab.WithBaseURL(ts.URL+"/api/v4"))
	if err != nil {
		panic(err)
	}
	mr, _, err := gl.MergeRequests.CreateMergeRequest("team/app", &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr("Pin nixos/nix"), SourceBranch: gitlab.Ptr("topic"), TargetBranch: gitlab.Ptr("main")})
	if err != nil {
		panic(err)
	}
	if _, err := emu.Merge("team/app", mr.IID, "alice"); err != nil {
		panic(err)
	}
	if err := emu.WaitHooks(context.Background()); err != nil {
		panic(err)
	}
	ci, _ := emu.File("team/app", "main", ".gitlab-ci.yml")
	fmt.Print(emu.MergeRequests("team/app")[0].State, "\n", ci)
	// Output:
	// merged
	// image: nixos/nix@sha256:1111111111111111111111111111111111111111111111111111111111111111
}
