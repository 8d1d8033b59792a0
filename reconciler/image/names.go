package image

import (
	"fmt"
	"strings"
)

// splitName turns a tar entry name (or hardlink target) into its path
// components: a leading "/" or "./" is dropped, as are "." and empty
// components. A ".." component is refused: no entry may climb.
func splitName(name string) ([]string, error) {
	var comps []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("entry %q has a \"..\" component", name)
		}
		comps = append(comps, c)
	}
	return comps, nil
}

// skeleton are the directories that the staging dir provides itself. An
// image may list them as directories; as anything else they would redirect
// the store or the db.
var skeleton = map[string]bool{
	"nix":            true,
	"nix/store":      true,
	"nix/var":        true,
	"nix/var/nix":    true,
	"nix/var/nix/db": true,
}

// entryKind sorts an entry by where it would land.
type entryKind int

const (
	dropped entryKind = iota
	skeletonDir
	storeEntry
	dbEntry
)

// classify says where the entry with components comps belongs.
func classify(comps []string) entryKind {
	full := strings.Join(comps, "/")
	switch {
	case skeleton[full]:
		return skeletonDir
	case len(comps) >= 3 && comps[0] == "nix" && comps[1] == "store":
		return storeEntry
	case len(comps) >= 5 && strings.Join(comps[:4], "/") == "nix/var/nix/db":
		return dbEntry
	}
	return dropped
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// whiteoutTarget returns what a whiteout entry hides (the dir itself for
// an opaque marker), or nil when the entry is no whiteout.
func whiteoutTarget(comps []string) []string {
	if len(comps) == 0 {
		return nil
	}
	base := comps[len(comps)-1]
	dir := comps[:len(comps)-1]
	switch {
	case base == opaqueMarker:
		return append([]string(nil), dir...)
	case strings.HasPrefix(base, whiteoutPrefix):
		return append(append([]string(nil), dir...), strings.TrimPrefix(base, whiteoutPrefix))
	}
	return nil
}

// within reports whether path a equals b or lies below it.
func within(a, b []string) bool {
	if len(a) < len(b) {
		return false
	}
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
