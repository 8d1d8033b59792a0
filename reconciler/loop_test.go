package reconciler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// TestTriggersCoalesce: 100 triggers during a pass make exactly one more
// pass, and every one of them gets that pass's ticket.
func TestTriggersCoalesce(t *testing.T) {
	r := newRig(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.runner.hook = func(ctx context.Context, method string) error {
		if method == "wait-idle" {
			once.Do(func() { close(entered) })
			<-release
		}
		return nil
	}
	var runs atomic.Int32
	r.opts.OnReport = func(Report) { runs.Add(1) }
	rec := r.reconciler(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()

	first := rec.Trigger(Reason{Kind: KindWebhook, Detail: "first"})
	<-entered
	if s := rec.Status(); s.Current == nil || s.Current.ID != first.ID {
		t.Errorf("status does not show the running pass %s: %+v", first.ID, s.Current)
	}

	tickets := make([]*Ticket, 100)
	var wg sync.WaitGroup
	for i := range tickets {
		wg.Go(func() { tickets[i] = rec.Trigger(Reason{Kind: KindWebhook, Detail: "burst"}) })
	}
	wg.Wait()
	for _, tk := range tickets {
		if tk != tickets[0] {
			t.Fatalf("burst triggers got different tickets: %s and %s", tk.ID, tickets[0].ID)
		}
	}
	if tickets[0] == first {
		t.Fatal("a trigger during a pass joined the running pass")
	}
	close(release)
	if rep := first.Report(); rep.Result != ResultOK {
		t.Errorf("first pass: %s %s", rep.Result, rep.Error)
	}
	second := tickets[0].Report()
	if second.Result != ResultOK {
		t.Errorf("second pass: %s %s", second.Result, second.Error)
	}
	if len(second.Reasons) != maxReasons+1 {
		t.Errorf("second pass reasons = %d, want %d kept plus a count", len(second.Reasons), maxReasons+1)
	}
	cancel()
	<-done
	if got := runs.Load(); got != 2 {
		t.Errorf("%d passes ran, want 2", got)
	}
}

// TestShutdownFinishesStoppedPass: a shutdown while the runner is stopped
// lets the pass complete, so the runner is started again.
func TestShutdownFinishesStoppedPass(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	r.stager.commitHook = func(context.Context, string) { cancel() }
	rec := r.reconciler(t)
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()
	tk := rec.Trigger(Reason{Kind: KindResync})
	queued := rec.Trigger(Reason{Kind: KindResync}) // joins tk: nothing started yet, or queues
	rep := tk.Report()
	<-done
	if rep.Result != ResultOK {
		t.Errorf("result = %s %q, want ok", rep.Result, rep.Error)
	}
	if r.calls.count("start") != 1 || r.calls.count("unpause") != 1 {
		t.Errorf("runner not restarted: %v", r.calls.list())
	}
	if q := queued.Report(); q.ID != tk.ID && q.Result != ResultCanceled {
		t.Errorf("queued pass after shutdown: %s, want canceled", q.Result)
	}
}

// TestShutdownDuringDrainUnpauses: a shutdown while waiting for jobs gives
// up the drain and unpauses; the runner is never stopped.
func TestShutdownDuringDrainUnpauses(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	r.runner.hook = func(hctx context.Context, method string) error {
		if method == "wait-idle" {
			cancel()
			<-hctx.Done()
			return hctx.Err()
		}
		return nil
	}
	rec := r.reconciler(t)
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()
	rep := rec.Trigger(Reason{Kind: KindResync}).Report()
	<-done
	if rep.Result != ResultFailed || rep.Terminal {
		t.Errorf("result = %s terminal=%v, want a transient failure", rep.Result, rep.Terminal)
	}
	if r.calls.count("stop") != 0 || r.calls.count("unpause") != 1 {
		t.Errorf("calls %v: want no stop and one unpause", r.calls.list())
	}
}
