package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
	"gitlab.com/hydrafy/hydrafy/internal/narhash"
	"gitlab.com/hydrafy/hydrafy/reconciler/store"
)

// stager is the state that the layer workers of one Stage share.
type stager struct {
	dir     string
	root    *os.Root // the staging dir
	storeF  *os.File // its nix/store, opened through root
	storeFd int
	// chown is set when running as root with a group other than 0: files
	// are created as euid:egid and must become 0:0.
	chown bool
	umask int

	written atomic.Int64
	dbBytes atomic.Int64 // db file bytes written, at most maxDBBytes
	reread  atomic.Int64 // store paths hashed from disk, not while extracted
	// rows is what the image db declares for each store path; it is read
	// before any store path is written.
	rows map[string]store.PathInfo
	// valid reports store paths the live store holds: not extracted.
	valid func(string) bool

	mu      sync.Mutex
	claims  map[string]int    // store path name → layer index
	hashes  map[string]string // store path → computed NAR hash
	sizes   map[string]int64  // store path → computed NAR size
	summed  map[string]int64  // store path → NAR size added up while extracting
	db      []*dbLayer        // by layer index
	scanned map[int]bool      // layers whose db the db phase took
	// held are the store paths each layer held, by layer index.
	held [][]string
	// validSeen are store paths found in a layer and left out as valid.
	validSeen map[string]bool
}

// setHeld records the store paths layer index held.
func (s *stager) setHeld(index int, paths []string) {
	s.mu.Lock()
	s.held[index] = paths
	s.mu.Unlock()
}

// leftValid records that store path p was left out: the live store holds it.
func (s *stager) leftValid(p string) {
	s.mu.Lock()
	s.validSeen[p] = true
	s.mu.Unlock()
}

// newStager creates the staging dir in parent with the store skeleton.
func newStager(parent string, layers int) (*stager, error) {
	dir, err := os.MkdirTemp(parent, ".hydrafy-stage-")
	if err != nil {
		return nil, fmt.Errorf("creating the staging dir: %w", err)
	}
	// Exactly 0700: no setgid bit inherited from parent for the tree below.
	if err := os.Chmod(dir, 0o700); err != nil {
		removeTree(dir)
		return nil, fmt.Errorf("creating the staging dir: %w", err)
	}
	s := &stager{dir: dir, chown: os.Geteuid() == 0 && os.Getegid() != 0, umask: umask(), claims: map[string]int{}, hashes: map[string]string{},
		sizes: map[string]int64{}, summed: map[string]int64{}, db: make([]*dbLayer, layers), scanned: map[int]bool{},
		held: make([][]string, layers), validSeen: map[string]bool{}}
	if err := s.open(); err != nil {
		s.close()
		removeTree(dir)
		return nil, err
	}
	return s, nil
}

func (s *stager) open() error {
	var err error
	if s.root, err = os.OpenRoot(s.dir); err != nil {
		return fmt.Errorf("opening the staging dir: %w", err)
	}
	if err := s.root.MkdirAll("nix/var/nix/db", 0o755); err != nil {
		return fmt.Errorf("creating the staging dir: %w", err)
	}
	if err := s.root.Mkdir("nix/store", 0o755); err != nil {
		return fmt.Errorf("creating the staging dir: %w", err)
	}
	if s.storeF, err = s.root.Open("nix/store"); err != nil {
		return fmt.Errorf("opening the staging store: %w", err)
	}
	s.storeFd = int(s.storeF.Fd())
	return nil
}

func (s *stager) close() {
	if s.storeF != nil {
		s.storeF.Close()
	}
	if s.root != nil {
		s.root.Close()
	}
}

// claim records that layer index holds store path name: store layers are
// disjoint, so a path in two layers is refused (they would race).
func (s *stager) claim(name string, index int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.claims[name]; ok && other != index {
		return fmt.Errorf("store path /nix/store/%s is in two layers (%d and %d)", name, other, index)
	}
	s.claims[name] = index
	return nil
}

func (s *stager) setDB(index int, l dbLayer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.opaque || len(l.whiteouts) > 0 || len(l.files) > 0 {
		s.db[index] = &l
	}
}

func (s *stager) addWritten(n int64) { s.written.Add(n) }

// hash reads a finished store path back and records its NAR hash.
func (s *stager) hash(name string) error {
	s.reread.Add(1)
	h, n, err := narhash.Of(filepath.Join(s.dir, "nix/store", name))
	if err != nil {
		return err
	}
	s.setHash(name, h, n)
	return nil
}

// setHash records the NAR hash and size of store path name.
func (s *stager) setHash(name, h string, size int64) {
	s.mu.Lock()
	s.hashes["/nix/store/"+name] = h
	s.sizes["/nix/store/"+name] = size
	s.mu.Unlock()
}

// counted records the NAR size added up while store path name was extracted.
func (s *stager) counted(name string, n int64) {
	s.mu.Lock()
	s.summed["/nix/store/"+name] = n
	s.mu.Unlock()
}

// removeTree removes dir, read-only directories included, without ever
// following a symlink.
func removeTree(dir string) error { return fsutil.RemoveTree(dir) }

// umask returns the process's umask, read without changing it; when it
// cannot be read, it assumes the worst (every file is chmodded).
func umask() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseInt(strings.TrimSpace(v), 8, 32); err == nil {
				return int(m)
			}
		}
	}
	return 0o777
}
