package standin

import (
	"fmt"

	"github.com/BurntSushi/toml"
)

// runnerConfig is the part of gitlab-runner's config.toml the stand-in reads.
type runnerConfig struct {
	ListenAddress string `toml:"listen_address"`
	Runners       []struct {
		Name   string `toml:"name"`
		Docker struct {
			Image   string   `toml:"image"`
			Volumes []string `toml:"volumes"`
		} `toml:"docker"`
	} `toml:"runners"`
}

func loadConfig(path string) (runnerConfig, error) {
	var c runnerConfig
	if _, err := toml.DecodeFile(path, &c); err != nil {
		return c, fmt.Errorf("loading runner config: %w", err)
	}
	return c, nil
}
