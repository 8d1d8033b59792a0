package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set with -ldflags "-X main.version=…" in release builds.
var version = ""

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "usage: hydrafy version (or hydrafy --version)\n\nPrints hydrafy's version.", stdout, stderr)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fs.usageError("unexpected argument %q", pos[0])
	}
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(stdout, "hydrafy %s\n", v)
	return nil
}
