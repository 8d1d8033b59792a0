package runner

import (
	"path"
	"path/filepath"
	"strings"
)

// storeMounts returns the bind mounts that give every job the live store,
// in the order they are added to config.toml: the store and its db
// read-write, and hydrafy's GC roots read-only, so that a job's own
// garbage collection keeps what hydrafy keeps (and cannot change the roots).
func storeMounts(storeDir string) []string {
	dir := filepath.Clean(storeDir)
	return []string{
		dir + "/nix/store:/nix/store:rw",
		dir + "/nix/var/nix/db:/nix/var/nix/db:rw",
		dir + "/nix/var/nix/gcroots/hydrafy:/nix/var/nix/gcroots/hydrafy:ro",
	}
}

// containerPath is where a docker volume spec ("host:container[:mode]" or
// an anonymous "container") mounts inside the job container.
func containerPath(spec string) string {
	parts := strings.Split(spec, ":")
	p := parts[0]
	if len(parts) >= 2 {
		p = parts[1]
	}
	return path.Clean(p)
}

// volumeEdit says what to do with an existing volumes list: replace
// element i with a new spec, remove elements, append specs.
type volumeEdit struct {
	replace map[int]string
	remove  map[int]bool
	append  []string
	result  []string
}

func (e volumeEdit) changed() bool {
	return len(e.replace)+len(e.remove)+len(e.append) > 0
}

// planVolumes keeps every volume that does not mount at one of the wanted
// container paths; the first volume at such a path becomes the wanted
// mount, later ones go, and missing ones are appended.
func planVolumes(old, want []string) volumeEdit {
	e := volumeEdit{replace: map[int]string{}, remove: map[int]bool{}}
	byPath := map[string]string{}
	for _, w := range want {
		byPath[containerPath(w)] = w
	}
	seen := map[string]bool{}
	for i, v := range old {
		cp := containerPath(v)
		w, ok := byPath[cp]
		switch {
		case !ok:
			e.result = append(e.result, v)
		case seen[cp]:
			e.remove[i] = true
		default:
			seen[cp] = true
			if v != w {
				e.replace[i] = w
			}
			e.result = append(e.result, w)
		}
	}
	for _, w := range want {
		if !seen[containerPath(w)] {
			e.append = append(e.append, w)
			e.result = append(e.result, w)
		}
	}
	return e
}
