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
	"strings"
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
		{"gc", "delete the store paths nothing keeps (retention policy)", runGC},
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
	switch {
	case len(args) == 0:
		usage(stderr)
		return 2
	case args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || (args[0] == "help" && len(args) == 1):
		usage(stdout)
		return 0
	case args[0] == "help":
		// "hydrafy help CMD" is "hydrafy CMD --help".
		if args[1] == "standin" || !known(args[1]) {
			fmt.Fprintf(stderr, "hydrafy: unknown command %q (see hydrafy --help)\n", args[1])
			return 2
		}
		args = []string{args[1], "--help"}
	case args[0] == "--version" || args[0] == "-version":
		args = []string{"version"}
	case strings.HasPrefix(args[0], "-"):
		fmt.Fprintf(stderr, "hydrafy: unknown flag %s (see hydrafy --help)\n", args[0])
		return 2
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
	fmt.Fprintln(w, "\nhydrafy help COMMAND (or hydrafy COMMAND --help) shows a command's flags; hydrafy --version its version.")
}

// known reports whether name is a user command.
func known(name string) bool {
	for _, c := range commands() {
		if c.name == name {
			return true
		}
	}
	return false
}

// flagSet is a subcommand's flags with its usage text. --help prints
// the usage to stdout; a mistake gets one line on stderr that points at
// --help.
type flagSet struct {
	*flag.FlagSet
	usage          string
	stdout, stderr io.Writer
}

// newFlags returns the flag set of "hydrafy name"; usage is its help text
// (its first line the synopsis).
func newFlags(name, usage string, stdout, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet("hydrafy "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, usage: usage, stdout: stdout, stderr: stderr}
}

// help prints the usage text and the flags to stdout.
func (f *flagSet) help() {
	fmt.Fprintln(f.stdout, f.usage)
	fmt.Fprintln(f.stdout, "\nflags:")
	f.SetOutput(f.stdout)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// usageError reports a command-line mistake in one line and returns
// errUsage (exit status 2).
func (f *flagSet) usageError(format string, args ...any) error {
	fmt.Fprintf(f.stderr, "%s: %s (see %s --help)\n", f.Name(), fmt.Sprintf(format, args...), f.Name())
	return errUsage
}

// parseFlagsOnly is parse for a command that takes no positional
// arguments: one is a usage error.
func (f *flagSet) parseFlagsOnly(args []string) error {
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	return nil
}

// parse parses args, accepting flags after positional arguments too
// ("hydrafy seed IMAGE --store DIR"). It returns the positional arguments;
// -h and --help print the help and return flag.ErrHelp (exit status 0).
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help()
				return nil, err
			}
			return nil, f.usageError("%v", err)
		}
		args = f.Args()
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
