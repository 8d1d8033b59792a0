package gitlabemu

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

func TestProjectsAndFiles(t *testing.T) {
	_, _, gl := newTestServer(t)
	byPath, _, err := gl.Projects.GetProject("group/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	byID, _, err := gl.Projects.GetProject(byPath.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if byID.PathWithNamespace != "group/app" || byID.DefaultBranch != "main" || !strings.HasSuffix(byID.WebURL, "/group/app") {
		t.Errorf("project = %+v", byID)
	}
	_, resp, err := gl.Projects.GetProject("group/nope", nil)
	if status(resp) != http.StatusNotFound || !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("unknown project: status %d, err %v", status(resp), err)
	}

	f, _, err := gl.RepositoryFiles.GetFile("group/app", "ci/build.yml", &gitlab.GetFileOptions{Ref: gitlab.Ptr("main")})
	if err != nil {
		t.Fatal(err)
	}
	if f.Encoding != "base64" || f.BlobID != blobID([]byte("build:\n  image: nixos/nix\n")) || f.LastCommitID == "" {
		t.Errorf("file = %+v", f)
	}
	raw, _, err := gl.RepositoryFiles.GetRawFile("group/app", "ci/build.yml", &gitlab.GetRawFileOptions{Ref: gitlab.Ptr("main")})
	if err != nil || string(raw) != "build:\n  image: nixos/nix\n" {
		t.Errorf("raw = %q, %v", raw, err)
	}
	meta, _, err := gl.RepositoryFiles.GetFileMetaData("group/app", "ci/build.yml", &gitlab.GetFileMetaDataOptions{Ref: gitlab.Ptr("main")})
	if err != nil || meta.BlobID != f.BlobID || meta.LastCommitID != f.LastCommitID || meta.Size != f.Size {
		t.Errorf("HEAD file = %+v, %v", meta, err)
	}
	_, resp, err = gl.RepositoryFiles.GetFile("group/app", "missing.yml", &gitlab.GetFileOptions{Ref: gitlab.Ptr("main")})
	if status(resp) != http.StatusNotFound || !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("missing file: status %d, err %v", status(resp), err)
	}
}

func TestBranches(t *testing.T) {
	_, _, gl := newTestServer(t)
	b, resp, err := gl.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{Branch: gitlab.Ptr("feature"), Ref: gitlab.Ptr("main")})
	if err != nil || status(resp) != http.StatusCreated || b.Commit == nil || b.Commit.ID == "" {
		t.Fatalf("create: %+v %v", b, err)
	}
	_, resp, err = gl.Branches.CreateBranch("group/app", &gitlab.CreateBranchOptions{Branch: gitlab.Ptr("feature"), Ref: gitlab.Ptr("main")})
	if status(resp) != http.StatusBadRequest || err == nil || !strings.Contains(err.Error(), "Branch already exists") {
		t.Errorf("existing branch: status %d, %v; want 400 Branch already exists", status(resp), err)
	}
	got, _, err := gl.Branches.GetBranch("group/app", "feature")
	if err != nil || got.Commit.ID != b.Commit.ID {
		t.Errorf("get: %+v %v", got, err)
	}
	if _, err := gl.Branches.DeleteBranch("group/app", "feature"); err != nil {
		t.Fatal(err)
	}
	_, resp, _ = gl.Branches.GetBranch("group/app", "feature")
	if status(resp) != http.StatusNotFound {
		t.Errorf("deleted branch: status %d", status(resp))
	}
	resp, _ = gl.Branches.DeleteBranch("group/app", "feature")
	if status(resp) != http.StatusNotFound {
		t.Errorf("delete missing: status %d", status(resp))
	}
}

func act(a gitlab.FileActionValue, path, content string) *gitlab.CommitActionOptions {
	return &gitlab.CommitActionOptions{Action: gitlab.Ptr(a), FilePath: gitlab.Ptr(path), Content: gitlab.Ptr(content)}
}

func TestCommits(t *testing.T) {
	emu, _, gl := newTestServer(t)
	mainHead := emu.Branch("group/app", "main")
	c, resp, err := gl.Commits.CreateCommit("group/app", &gitlab.CreateCommitOptions{
		Branch: gitlab.Ptr("topic"), StartBranch: gitlab.Ptr("main"), CommitMessage: gitlab.Ptr("Pin image\n\nHydrafy-Digest: sha256:aa"),
		AuthorName: gitlab.Ptr("hydrafy"), AuthorEmail: gitlab.Ptr("hydrafy@example.com"),
		Actions: []*gitlab.CommitActionOptions{
			act(gitlab.FileUpdate, ".gitlab-ci.yml", "image: nixos/nix@sha256:aa\n"),
			act(gitlab.FileCreate, "new.txt", "x"),
			{Action: gitlab.Ptr(gitlab.FileMove), FilePath: gitlab.Ptr("ci/moved.yml"), PreviousPath: gitlab.Ptr("ci/build.yml")},
		},
	})
	if err != nil || status(resp) != http.StatusCreated {
		t.Fatalf("create commit: %v", err)
	}
	if diff := cmp.Diff([]string{mainHead}, c.ParentIDs); diff != "" {
		t.Errorf("parents (-want +got):\n%s", diff)
	}
	if c.AuthorEmail != "hydrafy@example.com" || c.CommitterEmail != "hydrafy-bot@example.com" || !strings.Contains(c.Message, "Hydrafy-Digest: sha256:aa") {
		t.Errorf("commit = %+v", c)
	}
	if got, _ := emu.File("group/app", "topic", "ci/moved.yml"); got != "build:\n  image: nixos/nix\n" {
		t.Errorf("moved file = %q", got)
	}
	got, _, err := gl.Commits.GetCommit("group/app", c.ID, nil)
	if err != nil || got.ID != c.ID || got.Title != "Pin image" {
		t.Errorf("get commit: %+v %v", got, err)
	}
	list, _, err := gl.Commits.ListCommits("group/app", &gitlab.ListCommitsOptions{RefName: gitlab.Ptr("topic")})
	if err != nil || len(list) != 2 || list[0].ID != c.ID {
		t.Errorf("list commits: %d %v", len(list), err)
	}

	bad := []struct {
		name string
		opt  gitlab.CreateCommitOptions
		want string
	}{
		{"bad action", gitlab.CreateCommitOptions{Actions: []*gitlab.CommitActionOptions{act("frobnicate", "a", "")}}, "does not have a valid value"},
		{"update missing", gitlab.CreateCommitOptions{Actions: []*gitlab.CommitActionOptions{act(gitlab.FileUpdate, "nope", "x")}}, "doesn't exist"},
		{"create existing", gitlab.CreateCommitOptions{Actions: []*gitlab.CommitActionOptions{act(gitlab.FileCreate, "new.txt", "x")}}, "already exists"},
		{"branch exists, other start", gitlab.CreateCommitOptions{StartBranch: gitlab.Ptr("main"), Actions: []*gitlab.CommitActionOptions{act(gitlab.FileCreate, "b", "x")}}, "already exists"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			opt := tt.opt
			opt.Branch, opt.CommitMessage = gitlab.Ptr("topic"), gitlab.Ptr("m")
			_, resp, err := gl.Commits.CreateCommit("group/app", &opt)
			if status(resp) != http.StatusBadRequest || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("status %d err %v, want 400 %q", status(resp), err, tt.want)
			}
		})
	}
	if emu.Branch("group/app", "topic") != c.ID {
		t.Error("a refused commit moved the branch")
	}

	// force restarts the branch from start_branch.
	f, _, err := gl.Commits.CreateCommit("group/app", &gitlab.CreateCommitOptions{
		Branch: gitlab.Ptr("topic"), StartBranch: gitlab.Ptr("main"), Force: gitlab.Ptr(true), CommitMessage: gitlab.Ptr("again"),
		Actions: []*gitlab.CommitActionOptions{act(gitlab.FileUpdate, ".gitlab-ci.yml", "image: nixos/nix@sha256:bb\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{mainHead}, f.ParentIDs); diff != "" {
		t.Errorf("forced parents (-want +got):\n%s", diff)
	}
	if _, err := emu.File("group/app", "topic", "new.txt"); err == nil {
		t.Error("force kept a file of the replaced commit")
	}
}

func TestPagination(t *testing.T) {
	emu, _, gl := newTestServer(t)
	for i := range 25 {
		if _, err := emu.Push("group/app", fmt.Sprintf("b%02d", i), "root", "c", map[string]string{"f": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	first, resp, err := gl.Branches.ListBranches("group/app", nil)
	if err != nil || len(first) != 20 || resp.TotalItems != 26 || resp.NextPage != 2 {
		t.Fatalf("page 1: %d items, total %d, next %d, %v", len(first), resp.TotalItems, resp.NextPage, err)
	}
	second, resp, err := gl.Branches.ListBranches("group/app", &gitlab.ListBranchesOptions{ListOptions: gitlab.ListOptions{Page: 2}})
	if err != nil || len(second) != 6 || resp.NextPage != 0 {
		t.Fatalf("page 2: %d items, next %d, %v", len(second), resp.NextPage, err)
	}
}
