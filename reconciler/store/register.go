package store

import (
	"context"
	"database/sql"
	"fmt"
)

// register inserts the rows of add (whose files are in place) into the
// live db in one transaction: ValidPaths with fresh ids, then Refs with
// references looked up by path, then DerivationOutputs. A path that became
// valid in between keeps its row. Nothing is registered unless all is.
func register(ctx context.Context, conn *sql.Conn, img *imageDB, add []row) error {
	// conn was opened with _txlock=immediate: this is BEGIN IMMEDIATE.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning the registration: %w", err)
	}
	defer tx.Rollback()
	at("begun")
	ids := map[string]int64{}
	inserted := map[string]bool{}
	for _, r := range add {
		id, _, ok, err := lookup(ctx, tx, r.path)
		if err != nil {
			return err
		}
		if !ok {
			res, err := tx.ExecContext(ctx, `insert into ValidPaths (path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca) values (?, ?, ?, ?, ?, ?, ?, ?)`,
				r.path, r.hash, r.registrationTime, r.deriver, r.narSize, r.ultimate, r.sigs, r.ca)
			if err != nil {
				return fmt.Errorf("registering %s: %w", r.path, err)
			}
			if id, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("registering %s: %w", r.path, err)
			}
			inserted[r.path] = true
		}
		ids[r.path] = id
	}
	for _, r := range add {
		if !inserted[r.path] {
			continue
		}
		for _, ref := range img.refs[r.path] {
			rid, ok := ids[ref]
			if !ok {
				var err error
				if rid, _, ok, err = lookup(ctx, tx, ref); err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: %s references %s, which is not valid", ErrClosure, r.path, ref)
				}
			}
			if _, err := tx.ExecContext(ctx, `insert or ignore into Refs (referrer, reference) values (?, ?)`, ids[r.path], rid); err != nil {
				return fmt.Errorf("registering reference %s → %s: %w", r.path, ref, err)
			}
		}
	}
	for _, o := range img.outputs {
		if !inserted[o.drv] {
			continue
		}
		if _, err := tx.ExecContext(ctx, `insert or replace into DerivationOutputs (drv, id, path) values (?, ?, ?)`, ids[o.drv], o.id, o.path); err != nil {
			return fmt.Errorf("registering output %s of %s: %w", o.id, o.drv, err)
		}
	}
	at("inserted")
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing the registration: %w", err)
	}
	return nil
}
