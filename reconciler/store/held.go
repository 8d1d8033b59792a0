package store

import (
	"context"
	"fmt"
	"strings"
)

// HeldImages reports, for each index digest, whether the store at liveDir
// still holds an image recorded under it (DIR/.hydrafy/layers.json): the
// image is recorded and every store path its layers listed is valid in the
// live db. A digest with no record (never merged here, or forgotten by
// `hydrafy seed --replace`) is not held; nor is one whose paths were
// collected as garbage since. It reads the live db read-only, without the
// big-lock: jobs may run meanwhile. Each path costs one indexed lookup.
func HeldImages(ctx context.Context, liveDir string, digests []string) (map[string]bool, error) {
	lf, err := readLayerFile(liveDir)
	if err != nil {
		return nil, err
	}
	held := make(map[string]bool, len(digests))
	if len(lf.Images) == 0 || len(digests) == 0 {
		for _, d := range digests {
			held[d] = false
		}
		return held, nil
	}
	db, conn, err := openDB(ctx, liveDir, readLive)
	if err != nil {
		return nil, fmt.Errorf("live store: %w", err)
	}
	defer db.Close()
	defer conn.Close()
	for _, d := range digests {
		held[d] = false
		for name, rec := range lf.Images {
			if !strings.HasSuffix(name, "@"+d) {
				continue
			}
			ok, err := layersValid(ctx, conn, lf, rec.Layers)
			if err != nil {
				return nil, err
			}
			if ok {
				held[d] = true
				break
			}
		}
	}
	return held, nil
}

// layersValid reports whether every store path the layers list is valid.
func layersValid(ctx context.Context, q querier, lf *layerFile, layers []string) (bool, error) {
	for _, l := range layers {
		for _, p := range lf.Layers[l] {
			_, _, ok, err := lookup(ctx, q, p)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, nil
			}
		}
	}
	return true, nil
}
