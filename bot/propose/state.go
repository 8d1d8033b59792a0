package propose

import (
	"encoding/json"
	"fmt"
	"slices"
)

// State is what the proposer remembers between passes: the digests each
// project declined by closing a proposal without merging it. Its JSON form
// is stable; the caller stores it.
type State struct {
	// Declined maps a project path to the digests it declined.
	Declined map[string][]string `json:"declined,omitempty"`
}

// ParseState reads a State from its JSON form; empty input is the zero State.
func ParseState(b []byte) (State, error) {
	var s State
	if len(b) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("parsing proposer state: %w", err)
	}
	return s, nil
}

// Marshal returns the State's JSON form.
func (s State) Marshal() ([]byte, error) { return json.Marshal(s) }

func (s State) clone() State {
	out := State{Declined: map[string][]string{}}
	for k, v := range s.Declined {
		out.Declined[k] = slices.Clone(v)
	}
	return out
}

func (s State) declined(project string) []string { return s.Declined[project] }

func (s *State) decline(project, digest string) {
	if digest == "" || slices.Contains(s.Declined[project], digest) {
		return
	}
	s.Declined[project] = append(s.Declined[project], digest)
	slices.Sort(s.Declined[project])
}

func itoa(n int64) string { return fmt.Sprint(n) }
