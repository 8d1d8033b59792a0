package deploy_test

import (
	"os"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
)

// TestFleetExamples: the fleet's example configs parse and declare the
// roles their comments say: a storeless bot host and a poll-only
// reconciler.
func TestFleetExamples(t *testing.T) {
	for _, tc := range []struct {
		file     string
		role     string
		webhooks bool
	}{
		{"hydrafy.bot.toml", "bot", false},
		{"hydrafy.reconciler.toml", "reconciler", false},
	} {
		data, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(data)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if c.Role() != tc.role || c.Server.Webhooks != tc.webhooks {
			t.Errorf("%s: role %s, webhooks %v; want %s, %v", tc.file, c.Role(), c.Server.Webhooks, tc.role, tc.webhooks)
		}
	}
}
