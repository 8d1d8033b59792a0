// Command hydrafy keeps the shared /nix store of GitLab docker runners in
// step with a digest-pinned nixos/nix image.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/internal/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx: work stops cleanly (merges are crash
	// safe, a drain restarts the runner). A second one ends the process.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: its name, a one-line summary and its body.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"seed", "copy or merge an image's Nix store into a store dir", runSeed},
		{"pin", "pin every reference of an image in CI files to a digest", runPin},
		{"check", "one watch (and propose) pass", runCheck},
		{"reconcile", "one reconcile pass on this runner host", runReconcile},
		{"serve", "run the daemon: webhooks, /resync, schedules", runServe},
		{"demo", "the whole cycle on this machine, with no network", runDemo},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "standin" {
		// The stand-in runner of `hydrafy demo` (gitlab-runner's signal
		// contract); not a user command.
		return standin.Main(args[1:], stderr)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "hydrafy %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "hydrafy: unknown command %q (see hydrafy --help)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: hydrafy COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// newFlags returns a flag set that reports its errors and returns errUsage.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hydrafy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, accepting flags after positional arguments too
// ("hydrafy seed IMAGE --store DIR"). It returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// errNoToken refuses to talk to GitLab without a token.
var errNoToken = errors.New("no GitLab token: set HYDRAFY_GITLAB_TOKEN or gitlab.token_file")

// loadConfig reads the config file and its secrets from the environment
// or the *_file keys. needToken refuses a config without a GitLab token,
// which every command that talks to GitLab needs. (The processes hydrafy
// starts never inherit the secrets: see runner's childEnv.)
func loadConfig(path string, needToken bool) (config.Config, error) {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return config.Config{}, err
	}
	if needToken && cfg.GitLab.Token == "" {
		return config.Config{}, errNoToken
	}
	return cfg, nil
}
