package gitlabemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

type hookConfig struct {
	timeout time.Duration
	retries int
	backoff time.Duration
}

// Delivery is the outcome of one webhook event sent to one hook.
type Delivery struct {
	HookID         int64
	URL            string
	Event          string // X-Gitlab-Event
	UUID           string // X-Gitlab-Event-UUID
	IdempotencyKey string
	Payload        []byte
	Attempts       int
	Status         int // last HTTP status, 0 if none
	Err            string
}

// OK reports whether the receiver answered 2xx.
func (d Delivery) OK() bool { return d.Status >= 200 && d.Status < 300 }

// Deliveries returns the finished webhook deliveries, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.delivered...)
}

// WaitHooks blocks until every queued webhook delivery, retries included,
// has finished, or ctx ends.
func (s *Server) WaitHooks(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := s.pending
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d webhook deliveries: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// fire queues one delivery per matching hook; callers hold s.mu.
func (s *Server) fire(p *project, event string, payload map[string]any, wants func(*hook) bool) {
	body, err := json.Marshal(payload)
	if err != nil {
		s.log.Error("gitlab emulator: encoding hook payload", "err", err)
		return
	}
	for _, h := range p.hooks {
		if !wants(h) || !h.active(s.now()) {
			continue
		}
		d := Delivery{HookID: h.ID, URL: h.URL, Event: event, UUID: newUUID(), IdempotencyKey: newUUID(), Payload: body}
		s.pending++
		go s.deliver(d, h)
	}
}

// deliver posts d, retrying failures with a doubling pause as GitLab does.
func (s *Server) deliver(d Delivery, h *hook) {
	s.mu.Lock()
	token := h.Token
	s.mu.Unlock()
	client := &http.Client{Timeout: s.hooks.timeout}
	pause := s.hooks.backoff
	for d.Attempts = 1; ; d.Attempts++ {
		status, err := s.post(client, d, token)
		d.Status, d.Err = status, ""
		if err != nil {
			d.Err = err.Error()
		}
		if d.OK() || d.Attempts > s.hooks.retries {
			break
		}
		select {
		case <-s.closed:
			d.Err = "emulator closed before retry"
		case <-time.After(pause):
			pause *= 2
			continue
		}
		break
	}
	s.log.Info("gitlab emulator: webhook delivered", "event", d.Event, "url", d.URL, "status", d.Status, "attempts", d.Attempts)
	s.mu.Lock()
	h.record(d.OK(), s.now())
	s.delivered = append(s.delivered, d)
	s.pending--
	s.mu.Unlock()
}

func (s *Server) post(client *http.Client, d Delivery, token string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/18.0.0")
	req.Header.Set("X-Gitlab-Event", d.Event)
	req.Header.Set("X-Gitlab-Event-UUID", d.UUID)
	req.Header.Set("X-Gitlab-Webhook-UUID", d.UUID)
	req.Header.Set("X-Gitlab-Instance", s.url)
	req.Header.Set("Idempotency-Key", d.IdempotencyKey)
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
