package watch

import (
	"testing"
	"time"
)

// BenchmarkCheck compares a check of an already observed digest (one
// HEAD) with one of a new digest (HEAD, index, image manifest, config)
// against the in-process registry.
func BenchmarkCheck(b *testing.B) {
	tr := newTestRegistry(b)
	tr.pushIndex(b, "latest", "linux/amd64", "linux/arm64")
	w := tr.watcher(b, nil)
	_, seen, err := w.Check(b.Context(), State{}, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := w.Check(b.Context(), seen, t0.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := w.Check(b.Context(), State{}, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
