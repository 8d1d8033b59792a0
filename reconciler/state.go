package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
)

// stateFileName is the state's file inside the state dir.
const stateFileName = "reconciler.json"

// keepRuns is how many reports the state keeps.
const keepRuns = 20

// State is what the reconciler persists between passes and restarts.
type State struct {
	// Seeded are the digests whose stores the live store holds. A digest is
	// added only after its commit succeeded.
	Seeded []Seeded `json:"seeded"`
	// Stalled are digests whose last attempt failed terminally, with the
	// reason; periodic passes skip them.
	Stalled map[string]string `json:"stalled,omitempty"`
	// FirstSeen is when each desired digest was first observed; the newest
	// one is what config.toml pins.
	FirstSeen map[string]time.Time `json:"first_seen,omitempty"`
	// Observed is what the last pass read from GitLab.
	Observed Observation `json:"observed"`
	// Candidate is the digest reference the watcher found ready to
	// propose: it is seeded before any merge request pins it.
	Candidate string `json:"candidate,omitempty"`
	// InFlight is set while a pass has the runner paused or stopped; a
	// process that finds it at start knows the last pass was cut short.
	InFlight *InFlight `json:"in_flight,omitempty"`
	// Runs are the last reports, newest last.
	Runs []Report `json:"runs,omitempty"`
	// LastGC is the last garbage collection that deleted.
	LastGC *CollectReport `json:"last_gc,omitempty"`
}

// Seeded is one digest merged into the live store.
type Seeded struct {
	Digest string    `json:"digest"`
	Ref    string    `json:"ref"`
	At     time.Time `json:"at"`
	Run    string    `json:"run"`
}

// InFlight is the runner-affecting part of a pass that has not finished.
type InFlight struct {
	Run     string `json:"run"`
	Paused  bool   `json:"paused"`
	Stopped bool   `json:"stopped"`
	// WasPaused: the runner was paused before the pass paused it (by an
	// administrator); it is left paused.
	WasPaused bool `json:"was_paused,omitempty"`
	// StoppedAt is when the runner stopped: a pass that restarts it after
	// a killed process reports the downtime from there.
	StoppedAt time.Time `json:"stopped_at,omitzero"`
}

// Observation is what the watched projects' default and proposal branches
// pinned.
type Observation struct {
	At       time.Time     `json:"at,omitzero"`
	Projects []ProjectPins `json:"projects"`
	Default  string        `json:"default_image,omitempty"`
	// Candidate is State.Candidate when the pass began.
	Candidate string `json:"candidate,omitempty"`
}

// ProjectPins is one project's default branch and the references found
// there, and the references on its open proposal branch.
type ProjectPins struct {
	Path   string `json:"path"`
	Branch string `json:"branch,omitempty"`
	Pins   []Pin  `json:"pins"`
	// Proposed are the references on the proposal branch; none when the
	// project has no such branch.
	Proposed []Pin  `json:"proposed,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (s *State) seededSet() map[string]bool {
	m := make(map[string]bool, len(s.Seeded))
	for _, d := range s.Seeded {
		m[d.Digest] = true
	}
	return m
}

func (s *State) addSeeded(d Seeded) {
	for _, x := range s.Seeded {
		if x.Digest == d.Digest {
			return
		}
	}
	s.Seeded = append(s.Seeded, d)
}

func (s *State) addRun(r Report) {
	s.Runs = append(s.Runs, r)
	if n := len(s.Runs) - keepRuns; n > 0 {
		s.Runs = append([]Report(nil), s.Runs[n:]...)
	}
}

// clone returns a deep enough copy for readers outside the lock.
func (s *State) clone() State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("encoding state: %v", err))
	}
	var c State
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("decoding state: %v", err))
	}
	return c
}

// loadState reads the state from dir; a missing file is an empty state.
func loadState(dir string) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("reading state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, Terminal(fmt.Errorf("decoding state %s: %w", filepath.Join(dir, stateFileName), err))
	}
	return s, nil
}

// persist writes the state to disk. The state is encoded under the lock
// and written outside it, so that triggers and status readers never wait
// for the disk.
func (r *Reconciler) persist() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	b, err := json.MarshalIndent(&r.state, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	return writeState(r.opts.StateDir, b)
}

// writeState writes the encoded state atomically: a crash leaves the old
// state or the new one.
func writeState(dir string, b []byte) error {
	return fsutil.WriteFileAtomic(filepath.Join(dir, stateFileName), append(b, '\n'), 0o600)
}
