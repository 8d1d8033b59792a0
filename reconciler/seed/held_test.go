package seed

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// TestHeldLayers records what each layer held; a history comment fills in
// only for a layer whose paths were not seen, and one that disagrees with
// what its layer held is reported.
func TestHeldLayers(t *testing.T) {
	h := func(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }
	a, b, c := "/nix/store/"+strings.Repeat("a", 32)+"-a", "/nix/store/"+strings.Repeat("b", 32)+"-b", "/nix/store/"+strings.Repeat("c", 32)+"-c"
	st := &image.Staged{
		Layers: []v1.Hash{h("1"), h("2"), h("3"), h("4")},
		Config: &v1.ConfigFile{History: []v1.History{
			{Comment: "store paths: ['" + a + "']"}, {Comment: "store paths: ['" + c + "']"}, {Comment: "store paths: ['" + c + "']"}, {},
		}},
		Held:    [][]string{{a}, {b}, nil, {}},
		History: [][]string{{a}, {c}, {c}, nil},
	}
	var logged bytes.Buffer
	got := heldLayers(st, slog.New(slog.NewTextHandler(&logged, nil)))
	var paths [][]string
	for _, l := range got {
		paths = append(paths, l.Paths)
	}
	if diff := cmp.Diff([][]string{{a}, {b}, {c}, {}}, paths); diff != "" {
		t.Errorf("recorded paths (-want +got):\n%s", diff)
	}
	if n := strings.Count(logged.String(), "history lists other store paths"); n != 1 || !strings.Contains(logged.String(), h("2").String()) {
		t.Errorf("want one warning about layer 2, got:\n%s", logged.String())
	}
}
