package gitlabemu

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// hookSink records webhook requests.
type hookSink struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
	fail int
	// failedKeys are the Idempotency-Keys of the refused attempts.
	failedKeys []string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail > 0 {
		h.fail--
		h.failedKeys = append(h.failedKeys, r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.reqs = append(h.reqs, r)
	h.body = append(h.body, b)
}

func (h *hookSink) events(kind string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for i, r := range h.reqs {
		if r.Header.Get("X-Gitlab-Event") == kind {
			var m map[string]any
			_ = json.Unmarshal(h.body[i], &m)
			out = append(out, m)
		}
	}
	return out
}

func TestHookPausedAfterFailures(t *testing.T) {
	emu, _, gl := newTestServer(t)
	sink := &hookSink{fail: 1 << 30}
	hs := httptest.NewServer(sink)
	defer hs.Close()
	if _, err := emu.AddHook("group/app", hs.URL, "tok"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		if _, err := emu.Push("group/app", "main", "root", "c", map[string]string{"f": string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
		if err := emu.WaitHooks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(emu.Deliveries()); n != 4 {
		t.Errorf("%d deliveries, want 4 before the hook is paused", n)
	}
	for _, d := range emu.Deliveries() {
		if d.OK() || d.Attempts != 4 {
			t.Errorf("delivery %+v", d)
		}
	}
	hooks, _, err := gl.Projects.ListProjectHooks("group/app", nil)
	if err != nil || len(hooks) != 1 || hooks[0].AlertStatus != "temporarily_disabled" || hooks[0].DisabledUntil == nil {
		t.Errorf("hooks %+v %v", hooks, err)
	}
}
