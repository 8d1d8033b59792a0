package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"modernc.org/sqlite"
)

// busyTimeout is how long a statement waits for another connection's write
// lock, as Nix waits (in milliseconds). Under the big-lock no Nix process
// writes; other readers never block us for long.
const busyTimeout = 60_000

// dbFile returns the path of root's db.sqlite.
func dbFile(root string) string { return filepath.Join(dbPath(root), "db.sqlite") }

// dbMode is how openDB opens a db.
type dbMode int

const (
	// readWrite is how Nix opens it: WAL mode, BEGIN meaning BEGIN
	// IMMEDIATE. Take the big-lock first.
	readWrite dbMode = iota
	// readLive reads a db that Nix processes may write meanwhile (the live
	// store while jobs run): read-only, through the WAL, as any reader. It
	// never writes a row; SQLite may create the -shm file (and an empty
	// -wal) that every WAL reader needs.
	readLive
	// readImmutable reads a db nothing can write (a staged image's, inside
	// a staging dir this process owns) without creating any file.
	readImmutable
)

// openDB opens root's Nix db on one connection as Nix opens it: WAL mode,
// foreign keys on, synchronous normal, a busy timeout. An existing -wal
// file is kept when the connection closes.
//
// SQLite documents wrong results or SQLITE_CORRUPT when a db opened as
// immutable changes: only readImmutable, for a db no process can write,
// opens it so.
func openDB(ctx context.Context, root string, mode dbMode) (*sql.DB, *sql.Conn, error) {
	name := dbFile(root)
	if _, err := os.Stat(name); err != nil {
		return nil, nil, fmt.Errorf("opening db: %w", err)
	}
	hadWAL, err := exists(name + "-wal")
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout))
	q.Add("_pragma", "foreign_keys(1)")
	switch mode {
	case readImmutable:
		q.Set("mode", "ro")
		q.Set("immutable", "1")
		q.Add("_pragma", "query_only(1)")
		if hadWAL {
			// Committed rows may sit in the WAL: read through it.
			q.Del("immutable")
		}
	case readLive:
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	default:
		q.Add("_pragma", "journal_mode(wal)")
		q.Add("_pragma", "synchronous(normal)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: name, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	if hadWAL && mode == readWrite {
		// SQLite deletes the -wal file when its last connection closes;
		// Nix may keep it (persistent WAL). Leave it as it was found.
		err = conn.Raw(func(dc any) error {
			fc, ok := dc.(sqlite.FileControl)
			if !ok {
				return errors.New("driver has no file control")
			}
			_, err := fc.FileControlPersistWAL("main", 1)
			return err
		})
		if err != nil {
			conn.Close()
			db.Close()
			return nil, nil, fmt.Errorf("keeping %s-wal: %w", name, err)
		}
	}
	return db, conn, nil
}

// row is one ValidPaths row, as the image's db holds it.
type row struct {
	id               int64
	path             string
	hash             string
	registrationTime int64
	deriver          sql.NullString
	narSize          sql.NullInt64
	ultimate         sql.NullInt64
	sigs             sql.NullString
	ca               sql.NullString
}

// drvOutput is one DerivationOutputs row with the derivation named by path.
type drvOutput struct {
	drv, id, path string
}

// imageDB is what a staged store's db registers: its rows in path order,
// each path's references (paths), and derivation outputs.
type imageDB struct {
	rows    []row
	refs    map[string][]string
	outputs []drvOutput
}

// readImageDB reads every row of a staged store's db. The image db is
// small (one row per image path): reading all of it is cheap.
func readImageDB(ctx context.Context, stagedDir string) (*imageDB, error) {
	db, conn, err := openDB(ctx, stagedDir, readImmutable)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	defer db.Close()
	defer conn.Close()
	img := &imageDB{refs: map[string][]string{}}
	rows, err := conn.QueryContext(ctx, `select id, path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca from ValidPaths order by path`)
	if err != nil {
		return nil, fmt.Errorf("reading image db: %w", err)
	}
	byID := map[int64]string{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.path, &r.hash, &r.registrationTime, &r.deriver, &r.narSize, &r.ultimate, &r.sigs, &r.ca); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading image db: %w", err)
		}
		img.rows = append(img.rows, r)
		byID[r.id] = r.path
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("reading image db: %w", err)
	}
	refs, err := conn.QueryContext(ctx, `select referrer, reference from Refs order by referrer, reference`)
	if err != nil {
		return nil, fmt.Errorf("reading image references: %w", err)
	}
	for refs.Next() {
		var from, to int64
		if err := refs.Scan(&from, &to); err != nil {
			refs.Close()
			return nil, fmt.Errorf("reading image references: %w", err)
		}
		fp, ok1 := byID[from]
		tp, ok2 := byID[to]
		if !ok1 || !ok2 {
			refs.Close()
			return nil, fmt.Errorf("image db is inconsistent: reference %d → %d names a missing row", from, to)
		}
		img.refs[fp] = append(img.refs[fp], tp)
	}
	if err := refs.Close(); err != nil {
		return nil, fmt.Errorf("reading image references: %w", err)
	}
	outs, err := conn.QueryContext(ctx, `select drv, id, path from DerivationOutputs order by drv, id`)
	if err != nil {
		return nil, fmt.Errorf("reading image derivation outputs: %w", err)
	}
	for outs.Next() {
		var drv int64
		var o drvOutput
		if err := outs.Scan(&drv, &o.id, &o.path); err != nil {
			outs.Close()
			return nil, fmt.Errorf("reading image derivation outputs: %w", err)
		}
		dp, ok := byID[drv]
		if !ok {
			outs.Close()
			return nil, fmt.Errorf("image db is inconsistent: derivation output %q names missing row %d", o.id, drv)
		}
		o.drv = dp
		img.outputs = append(img.outputs, o)
	}
	if err := outs.Close(); err != nil {
		return nil, fmt.Errorf("reading image derivation outputs: %w", err)
	}
	if err := checkImageDB(img); err != nil {
		return nil, err
	}
	return img, nil
}

// querier is a *sql.Conn or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lookup returns the id and hash of path in the live db, or ok false when
// the path is not valid. It is an indexed lookup (ValidPaths.path is
// unique): the cost does not grow with the live store.
func lookup(ctx context.Context, q querier, path string) (id int64, hash string, ok bool, err error) {
	err = q.QueryRowContext(ctx, `select id, hash from ValidPaths where path = ?`, path).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("looking up %s: %w", path, err)
	}
	return id, hash, true, nil
}
