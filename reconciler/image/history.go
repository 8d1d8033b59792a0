package image

import (
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var historyPath = regexp.MustCompile(`/nix/store/[^'",\]\s]+`)

// layerPaths returns, for each layer, the store paths its history comment
// lists ("store paths: ['/nix/store/…']", as nixos/nix writes them), or nil
// for every layer when the history does not line up with the layers.
func layerPaths(cf *v1.ConfigFile, layers int) [][]string {
	out := make([][]string, layers)
	if cf == nil {
		return out
	}
	var real []v1.History
	for _, h := range cf.History {
		if !h.EmptyLayer {
			real = append(real, h)
		}
	}
	if len(real) != layers {
		return out
	}
	for i, h := range real {
		out[i] = historyPath.FindAllString(h.Comment, -1)
	}
	return out
}
