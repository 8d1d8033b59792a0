package seed

import (
	"context"
	"fmt"
)

// merge adds the image's store paths to the store that dir already holds.
func merge(ctx context.Context, ref, dir string, o Options) (*Result, error) {
	return nil, fmt.Errorf("%s already holds a Nix store; merging is not available yet, use --replace", dir)
}
