package propose

import "gitlab.com/hydrafy/hydrafy/internal/glerr"

// need is what proposing asks of the bot's token.
var need = glerr.Need{
	Scope: "the api scope",
	Role:  "the Reporter role to read the project and the Developer role to push and open merge requests",
}

// explain wraps err from GitLab with what was being done and, for the
// answers a user can fix, what to fix.
func explain(action string, err error) error { return glerr.Explain(action, err, need) }
