package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
)

// TestWebhookBurstCoalesces: 100 merge webhooks (distinct deliveries)
// arriving while a pass runs cause one more pass, not 100.
func TestWebhookBurstCoalesces(t *testing.T) {
	committing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := newRig(t, stager(func() {
		once.Do(func() { close(committing) })
		<-release
	}))
	url, stop := serve(t, r.server(t))
	<-committing // the start-up pass is under way

	var wg sync.WaitGroup
	codes := make([]int, 100)
	errs := make([]error, 100)
	for i := range codes {
		wg.Go(func() {
			codes[i], _, errs[i] = hook("Merge Request Hook", mrPayload("group/app", "merge", "main"),
				"Idempotency-Key", fmt.Sprintf("burst-%d", i)).do(url)
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 202 || errs[i] != nil {
			t.Fatalf("delivery %d answered %d (%v)", i, c, errs[i])
		}
	}
	close(release)
	nixtest.WaitFor(t, "the queued pass to finish", func() bool {
		s := r.rec.Status()
		return s.Current == nil && !s.Queued && len(s.Runs) >= 2
	})
	// Connections dialed in the burst and never used would hold the
	// shutdown for net/http's 5 s grace for new connections.
	http.DefaultClient.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.rec.Status().Runs); n != 2 {
		t.Errorf("%d passes ran, want 2 (the start-up pass and one for the burst)", n)
	}
}

// TestPeriodicResync: the reconcile schedule queues passes by itself.
func TestPeriodicResync(t *testing.T) {
	r := newRig(t, stager(nil))
	r.opts.ResyncSchedule = "@every 1s"
	serve(t, r.server(t))
	nixtest.WaitFor(t, "a periodic pass", func() bool {
		for _, rep := range r.rec.Status().Runs {
			if strings.Join(rep.Reasons, ",") == "periodic" {
				return true
			}
		}
		return false
	})
}
