package watch

import (
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func parsePlatforms(specs []string) ([]v1.Platform, error) {
	out := make([]v1.Platform, 0, len(specs))
	for _, s := range specs {
		p, err := v1.ParsePlatform(s)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("watch: platform %q is not os/arch[/variant]", s)
		}
		out = append(out, *p)
	}
	return out, nil
}

// missingPlatforms returns the wanted platforms that none of have
// satisfies. A wanted "linux/arm64" is satisfied by "linux/arm64/v8".
func missingPlatforms(have []string, want []v1.Platform) []string {
	var missing []string
	for _, w := range want {
		found := slices.ContainsFunc(have, func(h string) bool {
			p, err := v1.ParsePlatform(h)
			return err == nil && p.Satisfies(w)
		})
		if !found {
			missing = append(missing, w.String())
		}
	}
	return missing
}

// indexPlatforms lists the platforms of an index's image manifests, sorted,
// leaving out entries without a platform and attestation manifests
// ("unknown/unknown").
func indexPlatforms(idx *v1.IndexManifest) []string {
	var out []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "" || m.Platform.OS == "unknown" {
			continue
		}
		out = append(out, m.Platform.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}
