package standin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// States a stand-in reports in its status file.
const (
	StateRunning  = "running"  // taking and running jobs
	StateDraining = "draining" // SIGQUIT received, waiting for running jobs
	StateExited   = "exited"   // drained, exiting 0
	StateAborted  = "aborted"  // SIGTERM/SIGINT, exiting 1
)

// Status is what a stand-in writes to its status file.
type Status struct {
	PID         int       `json:"pid"`
	State       string    `json:"state"`
	JobsRunning int       `json:"jobs_running"`
	JobsDone    int       `json:"jobs_done"`
	JobsAborted int       `json:"jobs_aborted"`
	Reloads     int       `json:"reloads"`      // reloads on SIGHUP
	ConfigLoads int       `json:"config_loads"` // every read of config.toml, also at start and on change
	Image       string    `json:"image"`        // [runners.docker] image of the first runner
	Volumes     []string  `json:"volumes"`      // [runners.docker] volumes of the first runner
	ConfigError string    `json:"config_error,omitempty"`
	MetricsAddr string    `json:"metrics_addr,omitempty"` // where listen_address metrics are served
	Updated     time.Time `json:"updated"`
}

// ReadStatus reads a stand-in's status file.
func ReadStatus(path string) (Status, error) {
	var s Status
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("reading stand-in status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parsing stand-in status %s: %w", path, err)
	}
	return s, nil
}

// writeStatus replaces the status file atomically so readers never see half
// a file.
func writeStatus(path string, s Status) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".status-*")
	if err != nil {
		return fmt.Errorf("writing stand-in status: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing stand-in status: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing stand-in status: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing stand-in status: %w", err)
	}
	return nil
}
