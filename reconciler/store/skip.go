package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Skipper decides which layers of an image need no download because the
// live store already holds their store paths. Its Skip method fits
// image.Options.Skip.
type Skipper struct {
	mu       sync.Mutex
	db       *sql.DB
	conn     *sql.Conn
	recorded map[string][]string
	skipped  []string
}

// NewSkipper opens liveDir's db read-only (no lock: jobs may run) and its
// layer records. Close it when staging is done.
func NewSkipper(ctx context.Context, liveDir string) (*Skipper, error) {
	recorded, err := MergedLayers(liveDir)
	if err != nil {
		return nil, err
	}
	db, conn, err := openDB(ctx, liveDir, readLive)
	if err != nil {
		return nil, fmt.Errorf("live store: %w", err)
	}
	return &Skipper{db: db, conn: conn, recorded: recorded}, nil
}

// Skip reports whether layer need not be pulled: its store paths (those
// given, from its record or history, or else those recorded when it was
// merged) are all valid in the live store now. A recorded layer whose paths were collected
// as garbage since is pulled again. A layer with no known store paths (the
// top layer, which holds the db) is never skipped.
func (s *Skipper) Skip(layer v1.Hash, storePaths []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := storePaths
	if len(paths) == 0 {
		paths = s.recorded[layer.String()]
	}
	if len(paths) == 0 {
		return false
	}
	for _, p := range paths {
		_, _, ok, err := lookup(context.Background(), s.conn, p)
		if err != nil || !ok {
			return false
		}
	}
	s.skipped = append(s.skipped, layer.String())
	return true
}

// Recorded returns the store paths recorded for layer (what it held when
// it was extracted or merged before), nil when none are. It fits
// image.Options.Recorded.
func (s *Skipper) Recorded(layer v1.Hash) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recorded[layer.String()]
}

// Valid reports whether store path p is valid in the live store now. It
// fits image.Options.Valid.
func (s *Skipper) Valid(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, ok, err := lookup(context.Background(), s.conn, p)
	return err == nil && ok
}

// Skipped returns the digests of the layers Skip skipped.
func (s *Skipper) Skipped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.skipped...)
}

// Close closes the db.
func (s *Skipper) Close() error {
	s.conn.Close()
	return s.db.Close()
}
