package image

import (
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options tune Stage. The zero value pulls linux/<host arch> with the
// Docker config keychain into a staging dir under the current directory.
type Options struct {
	// Platform is "os/arch" or "os/arch/variant"; empty means linux and
	// the host's architecture.
	Platform string
	// StageIn is the parent dir of the staging dir. It must be on the live
	// store's filesystem so that staged paths can be renamed into place.
	StageIn string
	// Skip reports layers not to download (their store paths are already
	// merged). It is asked for the layers whose store paths are known
	// (recorded, or listed in their history); nil skips nothing.
	Skip func(layer v1.Hash, storePaths []string) bool
	// Recorded returns the store paths a layer held when it was extracted
	// before (nil: unknown). They take the place of the layer's history
	// comment, which other tools drop or never write; nil knows none.
	Recorded func(layer v1.Hash) []string
	// Valid reports store paths the live store holds already: their
	// entries are neither written nor hashed (nil: none). The stage then
	// lacks them, as it lacks the paths of skipped layers.
	Valid func(storePath string) bool
	// Progress receives a progress line, redrawn in place; nil is quiet.
	Progress io.Writer
	// Writeback writes the staged files back to disk while the layers are
	// extracted (fsutil.Writeback), so that a flush of the staged store
	// that follows waits only for the last of them. Off, they are left to
	// the kernel's writeback.
	Writeback bool
	// Parallel is how many layers are pulled and extracted at once;
	// default min(8, 2*GOMAXPROCS).
	Parallel int
	// Keychain resolves registry credentials; default authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport carries the registry requests; default remote.DefaultTransport.
	// Rate limits (429, 503 with Retry-After) are retried on top of it.
	Transport http.RoundTripper
	// Retries is how often a rate-limited request is retried; default 5.
	Retries int
	// MaxRetryWait caps a single wait for a rate limit; default 2 minutes.
	MaxRetryWait time.Duration
	// Mirrors are pull-through caches or GitLab Dependency Proxies of the
	// image's registry, "HOST[:PORT][/PATH]", tried in order before the
	// registry itself: the image's repository is appended to each
	// ("mirror.gcr.io" → mirror.gcr.io/nixos/nix). The same digest is
	// pulled and checked whichever answers.
	Mirrors []string
	// Log receives a warning for each mirror that failed; nil discards.
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Platform == "" {
		o.Platform = "linux/" + runtime.GOARCH
	}
	if o.StageIn == "" {
		o.StageIn = "."
	}
	if o.Parallel <= 0 {
		o.Parallel = min(8, 2*runtime.GOMAXPROCS(0))
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}
