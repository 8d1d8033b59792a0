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
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hydrafy %s\n", versionString())
	return nil
}

// versionString is the release's version, the module's, or "(devel)".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
