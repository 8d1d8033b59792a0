package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"gitlab.com/hydrafy/hydrafy/reconciler/image"
	"gitlab.com/hydrafy/hydrafy/reconciler/seed"
)

const seedUsage = `usage: hydrafy seed IMAGE --store DIR [--platform os/arch] [--replace] [--quiet]

Copies IMAGE's Nix store (nix/store and nix/var/nix/db) into DIR, checking
every store path's NAR hash against the image's db. DIR appears only when
complete; on failure it is left as it was.`

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, seedUsage)
		fs.PrintDefaults()
	}
	store := fs.String("store", "", "store dir: gets nix/store and nix/var/nix/db")
	platform := fs.String("platform", "", "os/arch to pick from a multi-arch image (default linux/<host arch>)")
	replace := fs.Bool("replace", false, "swap a store already in DIR for exactly the image's store")
	quiet := fs.Bool("quiet", false, "no progress and no summary")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *store == "" {
		fs.Usage()
		return errUsage
	}
	o := seed.Options{
		Store:   *store,
		Replace: *replace,
		Image:   image.Options{Platform: *platform},
		Log:     slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if !*quiet && terminal(stderr) {
		o.Image.Progress = stderr
	}
	res, err := seed.Seed(ctx, pos[0], o)
	if err != nil {
		return err
	}
	if !*quiet {
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
