package server

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

const (
	// dedupSize bounds the delivery ids kept; GitLab retries within
	// minutes, so a few thousand cover any burst.
	dedupSize = 4096
	dedupTTL  = 24 * time.Hour
)

// dedup is a bounded set of recently seen delivery ids: least recently
// seen ids are evicted first, and ids older than the TTL count as unseen.
// It keeps each id's SHA-256, not the id: whatever a client sends as its
// key, an entry costs the same few bytes.
type dedup struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	order *list.List // front: most recent; values are *dedupEntry
	index map[dedupKey]*list.Element
}

type dedupKey [sha256.Size]byte

type dedupEntry struct {
	key dedupKey
	at  time.Time
}

func newDedup(size int, ttl time.Duration) *dedup {
	return &dedup{size: size, ttl: ttl, order: list.New(), index: map[dedupKey]*list.Element{}}
}

// seen records key at now and reports whether it was already there.
func (d *dedup) seen(id string, now time.Time) bool {
	key := dedupKey(sha256.Sum256([]byte(id)))
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.index[key]; ok {
		e := el.Value.(*dedupEntry)
		if now.Sub(e.at) < d.ttl {
			d.order.MoveToFront(el)
			return true
		}
		e.at = now
		d.order.MoveToFront(el)
		return false
	}
	d.index[key] = d.order.PushFront(&dedupEntry{key: key, at: now})
	for d.order.Len() > d.size {
		last := d.order.Back()
		d.order.Remove(last)
		delete(d.index, last.Value.(*dedupEntry).key)
	}
	return false
}
