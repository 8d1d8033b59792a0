package config

import (
	"fmt"
	"os"
)

// SecretFileWarnings names each configured secret file that users other
// than its owner may read (group or other read bits): a line per file, for
// the log at start. A file that cannot be read is Load's error, not this.
func (c Config) SecretFileWarnings() []string {
	var out []string
	for _, f := range []struct{ key, path string }{
		{"server.webhook_secret_file", c.Server.WebhookSecretFile},
		{"server.resync_token_file", c.Server.ResyncTokenFile},
		{"server.metrics_token_file", c.Server.MetricsTokenFile},
		{"gitlab.token_file", c.GitLab.TokenFile},
		{"runner.token_file", c.Runner.TokenFile},
	} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o044 != 0 {
			out = append(out, fmt.Sprintf("%s %s is readable by group or others (mode %04o); chmod 600 it", f.key, f.path, perm))
		}
	}
	return out
}
