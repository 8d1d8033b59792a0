package watch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/robfig/cron/v3"

	"gitlab.com/hydrafy/hydrafy/config"
)

// Options configures a Watcher. FromConfig builds one from the [watch]
// section; the other fields are for callers and tests.
type Options struct {
	// Image is the repository, "nixos/nix" or "registry.example:5000/nix".
	Image string
	// Tag is the moving tag to follow; exclusive with Semver.
	Tag string
	// Semver is a version range ("~2.24", "^2", ">=2.20 <3", "2.24.10"):
	// the newest tag in it is tracked.
	Semver string
	// Platforms must all be listed by an index before it is proposed.
	Platforms []string
	// Settle is how long a digest must be seen unchanged before it is ready.
	Settle time.Duration
	// Schedule is the cron spec of periodic checks (checked, not run, here).
	Schedule string
	// Insecure allows plain HTTP; loopback registries always get it.
	Insecure bool

	// Transport carries registry requests; remote.DefaultTransport if nil.
	Transport http.RoundTripper
	// Keychain finds registry credentials; authn.DefaultKeychain if nil.
	Keychain authn.Keychain
	// Retry bounds retries of 429 and 5xx answers; DefaultRetry if zero.
	Retry Retry
	// Now tells the time for Retry-After dates; time.Now if nil.
	Now func() time.Time
	// Logger receives debug lines; discarded if nil.
	Logger *slog.Logger
}

// FromConfig returns the Options that the [watch] section describes.
func FromConfig(c config.Watch) Options {
	return Options{
		Image:     c.Image,
		Tag:       c.Tag,
		Semver:    c.Semver,
		Platforms: append([]string(nil), c.Platforms...),
		Settle:    c.Settle.D(),
		Schedule:  c.Schedule,
		Insecure:  c.Insecure,
	}
}

// Watcher resolves the tracked tag of one image and decides when its digest
// is ready to propose. It holds no observation state of its own: Check takes
// the previous State and returns the next.
type Watcher struct {
	opts      Options
	repo      name.Repository
	track     tracker
	platforms []v1.Platform
	schedule  cron.Schedule
	remote    []remote.Option
	log       *slog.Logger
}

// New checks opts and returns a Watcher. Bad settings are reported here, by
// name, before any request is made.
func New(opts Options) (*Watcher, error) {
	if opts.Image == "" {
		return nil, errors.New("watch: image is empty")
	}
	if opts.Settle < 0 {
		return nil, fmt.Errorf("watch: settle %s is negative", opts.Settle)
	}
	w := &Watcher{opts: opts, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if w.repo, err = repository(opts); err != nil {
		return nil, err
	}
	if w.track, err = newTracker(opts); err != nil {
		return nil, err
	}
	if w.platforms, err = parsePlatforms(opts.Platforms); err != nil {
		return nil, err
	}
	if opts.Schedule != "" {
		if w.schedule, err = cron.ParseStandard(opts.Schedule); err != nil {
			return nil, fmt.Errorf("watch: schedule %q: %w", opts.Schedule, err)
		}
	}
	w.remote = remoteOptions(opts)
	return w, nil
}

// Schedule returns the parsed cron schedule, nil when Options had none.
func (w *Watcher) Schedule() cron.Schedule { return w.schedule }

func remoteOptions(opts Options) []remote.Option {
	inner := opts.Transport
	if inner == nil {
		inner = remote.DefaultTransport
	}
	retry := opts.Retry
	if retry == (Retry{}) {
		retry = DefaultRetry
	}
	retry.Attempts = max(retry.Attempts, 1)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	keychain := opts.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	return []remote.Option{
		remote.WithTransport(&retryTransport{inner: inner, retry: retry, now: now}),
		remote.WithAuthFromKeychain(keychain),
		remote.WithUserAgent("hydrafy"),
		// Status retries happen in retryTransport, which honours Retry-After.
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}
