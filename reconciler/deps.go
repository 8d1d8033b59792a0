package reconciler

import "context"

// Stager prepares an image's store ahead of the drain: pull, extract and
// verify into a staging dir on the live store's filesystem while jobs still
// run. ref is a digest reference such as "nixos/nix@sha256:…".
type Stager interface {
	Stage(ctx context.Context, ref string) (Staged, error)
}

// Staged is one image's store, extracted and verified, not yet live.
type Staged interface {
	// Digest returns the index digest the store was staged from.
	Digest() string
	// Commit merges the staged store into the live store under the
	// exclusive big-lock. It is idempotent: committing paths that are
	// already valid changes nothing.
	Commit(ctx context.Context) (CommitReport, error)
	// Close discards the staging dir if the store was not committed.
	Close() error
}

// Holder is an optional interface of a Stager: which of the digests the
// live store still holds entirely, checked cheaply on every pass. A seeded
// digest it denies (its paths were collected as garbage, or the store was
// replaced) is dropped from the seeded digests and staged again.
type Holder interface {
	Held(ctx context.Context, digests []string) (map[string]bool, error)
}

// Sweeper is an optional interface of a Stager: it removes staging dirs
// that a killed process left next to the live store (a pass killed after
// its commit stages nothing when it recovers, so no stage cleans them).
// The first pass of a process and every recovery sweep.
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// Planner is an optional interface of a Staged: how many store paths a
// commit would add. A staged store that would add none is recorded as
// seeded without draining the runner (the live store holds it already).
type Planner interface {
	PathsToAdd(ctx context.Context) (int, error)
}

// LiveCommitter is an optional interface of a Staged whose commit only
// adds store paths and can run while the runner runs jobs, under the same
// locks Nix processes take. With Options.LiveMerge, a pass whose staged
// stores all offer it neither pauses nor stops the runner.
type LiveCommitter interface {
	CommitLive(ctx context.Context) (CommitReport, error)
}

// CommitReport is what a commit changed in the live store.
type CommitReport struct {
	// PathsAdded and BytesAdded count the store paths moved in.
	PathsAdded int   `json:"paths_added"`
	BytesAdded int64 `json:"bytes_added"`
	// PathsTotal and BytesTotal describe the live store afterwards; zero
	// when the store does not report them.
	PathsTotal int   `json:"paths_total"`
	BytesTotal int64 `json:"bytes_total"`
	// PathsRestored counts added paths that vanished from disk during a
	// live commit (a job's garbage collection) and were added again.
	PathsRestored int `json:"paths_restored,omitempty"`
	// PathsRaced counts paths to add that a Nix process wrote first
	// during a live commit; its copy was kept.
	PathsRaced int `json:"paths_raced,omitempty"`
}

// Runner controls the gitlab-runner on this host.
type Runner interface {
	// Preflight refuses a control that cannot drain safely (for example a
	// systemd unit that stops with SIGTERM).
	Preflight(ctx context.Context) error
	// Paused reports whether the runner is paused in GitLab now: a runner
	// an administrator paused stays paused after a drain.
	Paused(ctx context.Context) (bool, error)
	// Pause stops new job assignments through the GitLab API.
	Pause(ctx context.Context) error
	// Unpause lets GitLab assign jobs again.
	Unpause(ctx context.Context) error
	// WaitIdle returns once the runner runs no jobs. It bounds the wait
	// itself (the drain timeout) and names the jobs still running when it
	// gives up.
	WaitIdle(ctx context.Context) error
	// Stop stops the runner gracefully (SIGQUIT) and waits for its exit.
	Stop(ctx context.Context) error
	// Start starts the runner.
	Start(ctx context.Context) error
	// Running reports whether the runner process is up.
	Running(ctx context.Context) (bool, error)
	// Configure makes config.toml mount storeDir and, when image is not
	// empty, pin the default image. It reports whether the file changed.
	Configure(storeDir, image string) (changed bool, err error)
}

// Repo reads the watched projects from GitLab.
type Repo interface {
	// DefaultBranch returns the project's default branch.
	DefaultBranch(ctx context.Context, project string) (string, error)
	// ReadFile returns a file's content at ref; ErrNotFound when the file
	// does not exist there.
	ReadFile(ctx context.Context, project, file, ref string) ([]byte, error)
}

// Pin is one reference of the watched image in a CI file.
type Pin struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Raw    string `json:"raw"`
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// FindFunc finds the references of image in a CI file's content.
type FindFunc func(src []byte, image string) ([]Pin, error)
