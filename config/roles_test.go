package config_test

import (
	"strings"
	"testing"

	"gitlab.com/hydrafy/hydrafy/config"
)

// TestRoles: which host runs what is declared in [bot] and [reconcile];
// a key that contradicts the role is an error naming it.
func TestRoles(t *testing.T) {
	botOnly := minimal + "[reconcile]\nenabled = false\n"
	tests := []struct {
		name     string
		in       string
		role     string
		webhooks bool
		wantErr  string
	}{
		{name: "default: bot and reconciler", in: minimal, role: "bot+reconciler", webhooks: true},
		{name: "reconciler only", in: minimal + "[bot]\nenabled = false\n", role: "reconciler", webhooks: true},
		{name: "poll-only reconciler", in: minimal + "[bot]\nenabled = false\n[server]\nwebhooks = false\n", role: "reconciler"},
		{name: "bot only takes no webhooks", in: botOnly, role: "bot"},
		{name: "bot only, webhooks off said twice", in: botOnly + "[server]\nwebhooks = false\n", role: "bot"},
		{
			name:    "nothing to run",
			in:      minimal + "[bot]\nenabled = false\n[reconcile]\nenabled = false\n",
			wantErr: "config: bot.enabled = false and reconcile.enabled = false: this host would run nothing",
		},
		{
			name:    "bot only with a store",
			in:      botOnly + "[store]\ndir = \"/srv/nix\"\n",
			wantErr: "config: store is set on a bot-only host",
		},
		{
			name:    "bot only with a runner key",
			in:      botOnly + "[runner]\ncontrol = \"docker\"\n",
			wantErr: "config: runner is set on a bot-only host",
		},
		{
			name:    "bot only with a resync schedule",
			in:      minimal + "[reconcile]\nenabled = false\nschedule = \"@every 1m\"\n",
			wantErr: "config: reconcile.schedule is set on a bot-only host",
		},
		{
			name:    "bot only with webhooks",
			in:      botOnly + "[server]\nwebhooks = true\n",
			wantErr: "config: server.webhooks = true on a bot-only host",
		},
		{
			name:    "poll-only host with a webhook secret file",
			in:      minimal + "[server]\nwebhooks = false\nwebhook_secret_file = \"/run/secret\"\n",
			wantErr: "config: server.webhook_secret_file is set but this host takes no webhooks",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Parse error = %v, want one line starting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Role() != tt.role || c.Server.Webhooks != tt.webhooks {
				t.Errorf("role %s, webhooks %v; want %s, %v", c.Role(), c.Server.Webhooks, tt.role, tt.webhooks)
			}
		})
	}
}
