package synth

import (
	"database/sql"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the pure-Go sqlite driver
)

// Schema is the Nix store db schema, version 10, as Nix creates it.
//
//go:embed schema.sql
var Schema string

// Register writes root/nix/var/nix/db (db.sqlite, schema, big-lock) holding
// infos, every row with the given registration time. The db must not exist.
func Register(root string, infos []Info, regTime int64) error {
	dir := filepath.Join(root, "nix/var/nix/db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dbPath := filepath.Join(dir, "db.sqlite")
	if _, err := os.Stat(dbPath); err == nil {
		return fmt.Errorf("synth: %s exists", dbPath)
	}
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec("pragma journal_mode = wal"); err != nil {
		return fmt.Errorf("synth: setting wal mode: %w", err)
	}
	if _, err := db.Exec(Schema); err != nil {
		return fmt.Errorf("synth: creating schema: %w", err)
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ids := map[string]int64{}
	for _, in := range infos {
		res, err := tx.Exec(`insert into ValidPaths (path, hash, registrationTime, narSize) values (?, ?, ?, ?)`,
			in.Path, in.NarHash, regTime, in.NarSize)
		if err != nil {
			return fmt.Errorf("synth: registering %s: %w", in.Path, err)
		}
		ids[in.Path], _ = res.LastInsertId()
	}
	for _, in := range infos {
		for _, r := range in.Refs {
			rid, ok := ids[r]
			if !ok {
				return fmt.Errorf("synth: %s references unregistered %s", in.Path, r)
			}
			if _, err := tx.Exec(`insert into Refs (referrer, reference) values (?, ?)`, ids[in.Path], rid); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, err := db.Exec("pragma wal_checkpoint(truncate)"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "schema"), []byte("10"), 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "big-lock"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}
