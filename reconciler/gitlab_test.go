package reconciler

import (
	"context"
	"errors"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/hydrafy/hydrafy/internal/gitlabemu"
	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

func TestGitLabRepo(t *testing.T) {
	ts := nixtest.NewGitLab(t, gitlabemu.Options{})
	emu := ts.Emu
	emu.AddToken("glpat-reader", "reader")
	if _, err := emu.AddProject("group/app", "trunk", map[string]string{".gitlab-ci.yml": "image: nixos/nix\n"}); err != nil {
		t.Fatal(err)
	}
	gl, err := gitlab.NewClient("glpat-reader", gitlab.WithBaseURL(ts.URL), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	repo := GitLabRepo{Client: gl}
	ctx := context.Background()

	branch, err := repo.DefaultBranch(ctx, "group/app")
	if err != nil || branch != "trunk" {
		t.Fatalf("DefaultBranch = %q, %v; want trunk", branch, err)
	}
	src, err := repo.ReadFile(ctx, "group/app", ".gitlab-ci.yml", "trunk")
	if err != nil || string(src) != "image: nixos/nix\n" {
		t.Errorf("ReadFile = %q, %v", src, err)
	}
	if _, err := repo.ReadFile(ctx, "group/app", "ci/missing.yml", "trunk"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
	if _, err := repo.DefaultBranch(ctx, "group/nope"); err == nil || !IsTerminal(err) {
		t.Errorf("unknown project: %v, want a terminal error", err)
	}
	bad, err := gitlab.NewClient("glpat-wrong", gitlab.WithBaseURL(ts.URL), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (GitLabRepo{Client: bad}).DefaultBranch(ctx, "group/app"); err == nil || !IsTerminal(err) {
		t.Errorf("wrong token: %v, want a terminal error", err)
	}
}
