package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

const seedUsage = `usage: hydrafy seed IMAGE --store DIR [--platform os/arch] [--replace | --live | --dry-run] [--mirror HOST[/PATH]]… [--lock-timeout D] [--quiet]

Copies IMAGE's Nix store (nix/store and nix/var/nix/db) into DIR, checking
every store path's NAR hash against the image's db. DIR appears only when
complete; on failure it is left as it was.

When DIR already holds a store, the image's paths are merged into it: the
store keeps every path it has (old images' paths, build results) and gains
the image's. Layers whose store paths DIR already holds are not pulled.
The merge and --replace wait up to --lock-timeout for every Nix process
to close the store (the exclusive flock on nix/var/nix/db/big-lock).

--mirror (repeatable) pulls the same digest through a pull-through cache
or a GitLab Dependency Proxy first ("mirror.gcr.io",
"gitlab.example.com/group/dependency_proxy/containers"), falling back to
IMAGE's registry; the digest is checked whichever answers.

--live merges while jobs use the store, the way Nix itself adds paths: it
holds the big-lock shared, takes Nix's lock on each path it adds, skips
paths a Nix process wrote meanwhile and registers the rest in one short
transaction. Nothing needs to stop; only a process holding the store
exclusively makes it wait (up to --lock-timeout).`

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", seedUsage, stdout, stderr)
	dir := fs.String("store", "", "store dir: gets nix/store and nix/var/nix/db")
	platform := fs.String("platform", "", "os/arch to pick from a multi-arch image (default linux/<host arch>)")
	replace := fs.Bool("replace", false, "swap a store already in DIR for exactly the image's store")
	quiet := fs.Bool("quiet", false, "no progress and no summary")
	dryRun := fs.Bool("dry-run", false, "print what a merge into DIR would add and change nothing")
	var mirrors stringList
	fs.Var(&mirrors, "mirror", "pull through this `HOST[/PATH]` first (repeatable; default store.mirrors is not read)")
	live := fs.Bool("live", false, "merge while Nix processes (jobs) use the store, under Nix's own locks")
	lockTimeout := fs.Duration("lock-timeout", store.DefaultLockTimeout, "how long to wait for Nix processes to close the store")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return fs.usageError("IMAGE is required (hydrafy seed IMAGE --store DIR)")
	case len(pos) > 1:
		return fs.usageError("one IMAGE at a time, got %d: %s", len(pos), strings.Join(pos, " "))
	case *dir == "":
		return fs.usageError("--store DIR is required")
	}
	o := seed.Options{
		Store:       *dir,
		Replace:     *replace,
		DryRun:      *dryRun,
		Live:        *live,
		LockTimeout: *lockTimeout,
		Image:       image.Options{Platform: *platform, Mirrors: mirrors},
		Log:         slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if !*quiet && terminal(stderr) {
		o.Image.Progress = stderr
		o.Progress = stderr
	}
	if err := config.CheckMirrors(mirrors); err != nil {
		return fs.usageError("%v", err)
	}
	res, err := seed.Seed(ctx, pos[0], o)
	if err != nil {
		return err
	}
	if res.From != "" && !*quiet {
		fmt.Fprintf(stdout, "pulled through %s\n", res.From)
	}
	switch {
	case *dryRun:
		m := res.Merge
		fmt.Fprintf(stdout, "dry run: merging %s (%s) into %s would add %d paths (%.1f MB), %d already valid\n",
			res.Ref, res.Digest, res.Store, len(m.Added), float64(m.AddedBytes)/1e6, m.AlreadyValid)
		for _, p := range m.Added {
			fmt.Fprintf(stdout, "  %s\n", p)
		}
	case *quiet:
	case res.Merge != nil:
		m := res.Merge
		how := "merged"
		if m.Live {
			how = "merged live"
		}
		fmt.Fprintf(stdout, "seeded %s (%s) into %s: %s, %d paths added (%.1f MB), %d already valid, %d layers reused, %.1f s\n",
			res.Ref, res.Digest, res.Store, how, len(m.Added), float64(m.AddedBytes)/1e6, m.AlreadyValid, res.LayersSkipped, res.Elapsed.Seconds())
		if n := len(m.Raced); n > 0 {
			fmt.Fprintf(stdout, "%d paths were written by a Nix process meanwhile and kept as it wrote them\n", n)
		}
		if n := len(m.Restored); n > 0 {
			fmt.Fprintf(stdout, "%d added paths vanished (a garbage collection in a job?) and were added again\n", n)
		}
		if n := len(m.HashConflicts); n > 0 {
			fmt.Fprintf(stdout, "%d paths differ from the image's and were kept as the store had them (see the warnings above)\n", n)
		}
	default:
		fmt.Fprintf(stdout, "seeded %s (%s) into %s: %s, %d paths, %.1f MB, %.1f s\n",
			res.Ref, res.Digest, res.Store, res.How, res.Paths, float64(res.Bytes)/1e6, res.Elapsed.Seconds())
	}
	return nil
}

// terminal reports whether w is a terminal.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
