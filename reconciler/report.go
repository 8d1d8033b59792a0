package reconciler

import "time"

// Result is how a pass ended.
type Result string

// The results a pass can end with.
const (
	ResultOK       Result = "ok"       // every desired digest is seeded, the runner is up
	ResultNoop     Result = "noop"     // nothing was missing and config.toml was already right
	ResultFailed   Result = "failed"   // some step failed; see Error and Steps
	ResultCanceled Result = "canceled" // the daemon shut down before the pass ran
)

// Step is one timed step of a pass.
type Step struct {
	Name     string    `json:"name"`
	Digest   string    `json:"digest,omitempty"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Error    string    `json:"error,omitempty"`
	Terminal bool      `json:"terminal,omitempty"`
}

// Report is the record of one pass.
type Report struct {
	ID       string    `json:"id"`
	Reasons  []string  `json:"reasons"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Result   Result    `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
	// Terminal says that retrying without a change cannot help.
	Terminal bool `json:"terminal,omitempty"`

	Desired []string `json:"desired"`
	Missing []string `json:"missing"`
	Skipped []string `json:"skipped,omitempty"`
	// Lost are digests the state had as seeded whose stores the live store
	// no longer holds entirely; they count as missing.
	Lost     []string `json:"lost,omitempty"`
	Seeded   []string `json:"seeded"`
	Image    string   `json:"image,omitempty"`
	Changed  bool     `json:"config_changed"`
	Recovery bool     `json:"recovery,omitempty"`
	// Restored says what a recovery did to bring the runner back after a
	// killed pass ("started", "unpaused", "left paused").
	Restored []string `json:"restored,omitempty"`

	Commits []CommitReport `json:"commits,omitempty"`
	// Collect is the garbage collection of the pass (planned, or done).
	Collect *CollectReport `json:"collect,omitempty"`
	Steps   []Step         `json:"steps"`
	// Mode is how the pass committed: "drain" (the runner paused,
	// drained and stopped around the commits) or "live" (merged while the
	// runner ran jobs); empty when it committed nothing.
	Mode string `json:"mode,omitempty"`
	// Downtime is the time between the runner's stop and its start again;
	// a recovery counts from the killed pass's stop.
	DowntimeSeconds float64 `json:"downtime_seconds"`
	// Drain is the time from the pause until the runner ran no jobs.
	DrainSeconds float64 `json:"drain_seconds"`
	// Stall is the time from the pause to the unpause: jobs queued then
	// waited for the pass.
	StallSeconds float64 `json:"stall_seconds"`
	Seconds      float64 `json:"seconds"`
	// GitLabRequests counts the GitLab API requests the pass sent
	// (retries included), where the client counts them.
	GitLabRequests int64 `json:"gitlab_requests"`
}

func seconds(d time.Duration) float64 { return d.Seconds() }
