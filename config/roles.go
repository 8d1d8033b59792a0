package config

import (
	"errors"
	"fmt"

	"github.com/BurntSushi/toml"
)

// Bot configures the bot: the registry watch and the merge requests it
// proposes. In a fleet of runner hosts one host (or a machine of its own)
// runs it; on every other host it is off.
type Bot struct {
	Enabled bool `toml:"enabled"`
}

// Role names what a host runs, for logs and /status.
func (c Config) Role() string {
	switch {
	case c.Bot.Enabled && c.Reconcile.Enabled:
		return "bot+reconciler"
	case c.Bot.Enabled:
		return "bot"
	default:
		return "reconciler"
	}
}

// settleRoles checks the host's roles against the keys the file sets: a
// bot-only host ([reconcile] enabled = false) has no store, no runner and
// takes no webhooks; a poll-only host (server.webhooks = false) has no
// webhook secret. A key that says otherwise is an error naming it, not a
// setting silently ignored.
func (c *Config) settleRoles(md toml.MetaData) error {
	if !c.Bot.Enabled && !c.Reconcile.Enabled {
		return errors.New("config: bot.enabled = false and reconcile.enabled = false: this host would run nothing")
	}
	if !c.Reconcile.Enabled {
		for _, k := range md.Keys() {
			switch {
			case k[0] == "store", k[0] == "runner", k[0] == "reconcile" && len(k) > 1 && k[1] != "enabled":
				return fmt.Errorf("config: %s is set on a bot-only host (reconcile.enabled = false): delete it, or enable the reconciler", k)
			}
		}
		if md.IsDefined("server", "webhooks") && c.Server.Webhooks {
			return errors.New("config: server.webhooks = true on a bot-only host (reconcile.enabled = false): webhooks trigger the reconciler; delete the key")
		}
		c.Server.Webhooks = false
	}
	if !c.Server.Webhooks && c.Server.WebhookSecretFile != "" {
		return errors.New("config: server.webhook_secret_file is set but this host takes no webhooks (server.webhooks = false or a bot-only host): delete the key")
	}
	return nil
}
