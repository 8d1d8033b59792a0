package watch

import (
	"context"
	"testing"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// testRegistry is nixtest's counting registry with the watcher's test
// conveniences.
type testRegistry struct{ *nixtest.Reg }

func newTestRegistry(t testing.TB) testRegistry {
	t.Helper()
	return testRegistry{nixtest.NewReg(t)}
}

// pushIndex pushes a Docker manifest list with one fresh image per platform
// to tag and returns its digest.
func (tr testRegistry) pushIndex(t testing.TB, tag string, platforms ...string) string {
	t.Helper()
	return tr.PushIndex(t, tag, nixtest.RandomIndex(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "2.32.1", platforms...))
}

// pushImage pushes a single-manifest image for platform to tag.
func (tr testRegistry) pushImage(t testing.TB, tag, platform string) string {
	t.Helper()
	return tr.PushImage(t, tag, nixtest.RandomImage(t, platform, time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), ""))
}

// watcher returns a Watcher on tr with fast retries; change adjusts opts.
func (tr testRegistry) watcher(t testing.TB, change func(*Options)) *Watcher {
	t.Helper()
	opts := Options{
		Image:     tr.Repo(),
		Tag:       "latest",
		Platforms: []string{"linux/amd64", "linux/arm64"},
		Settle:    time.Hour,
		Retry:     Retry{Attempts: 4, Base: time.Millisecond, Max: time.Minute},
	}
	if change != nil {
		change(&opts)
	}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func check(t testing.TB, w *Watcher, prev State, now time.Time) (Result, State) {
	t.Helper()
	res, next, err := w.Check(context.Background(), prev, now)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res, next
}
