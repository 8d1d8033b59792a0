package watch

import (
	"fmt"
	"net"

	"github.com/google/go-containerregistry/pkg/name"
)

// repository parses the image name; loopback registries and Insecure get
// plain HTTP.
func repository(opts Options) (name.Repository, error) {
	repo, err := name.NewRepository(opts.Image)
	if err != nil {
		return name.Repository{}, fmt.Errorf("watch: image %q: %w", opts.Image, err)
	}
	if opts.Insecure || loopback(repo.RegistryStr()) {
		repo, err = name.NewRepository(opts.Image, name.Insecure)
		if err != nil {
			return name.Repository{}, fmt.Errorf("watch: image %q: %w", opts.Image, err)
		}
	}
	return repo, nil
}

func loopback(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
