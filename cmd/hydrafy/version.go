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
