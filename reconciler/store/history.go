package store

import (
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var historyPath = regexp.MustCompile(`/nix/store/[^'",\]\s]+`)

// HistoryLayers pairs each layer with the store paths that its history
// comment lists ("store paths: ['/nix/store/…']", as nixos/nix writes
// them). When the history does not line up with the layers, no paths are
// given.
func HistoryLayers(layers []v1.Hash, cf *v1.ConfigFile) []Layer {
	out := make([]Layer, len(layers))
	for i, l := range layers {
		out[i].Digest = l.String()
	}
	if cf == nil {
		return out
	}
	var real []v1.History
	for _, h := range cf.History {
		if !h.EmptyLayer {
			real = append(real, h)
		}
	}
	if len(real) != len(layers) {
		return out
	}
	for i, h := range real {
		out[i].Paths = historyPath.FindAllString(h.Comment, -1)
	}
	return out
}
