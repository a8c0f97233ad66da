package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)
)

// DBFile is the store's file name in the server's data directory.
const DBFile = "flowlog.db"

// OpenDB opens (creating if needed) the server's SQLite store in dir.
// The store runs in WAL mode with synchronous=FULL: a transaction that
// returned is on disk, and a crash (kill -9) at any moment leaves the
// last committed state. Write transactions take the lock when they begin
// (BEGIN IMMEDIATE) and wait up to 10 s for another writer, so
// concurrent callers queue instead of failing with SQLITE_BUSY.
//
// Each service creates its own tables (CREATE TABLE IF NOT EXISTS …) when
// it is constructed; table names start with the service's name (ec2_,
// logs_, iam_, control_).
func OpenDB(ctx context.Context, dir string) (*sql.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One writer at a time is SQLite's rule anyway; a few connections let
	// readers run beside it in WAL mode.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("open store %s: journal mode is %q, want wal: %v", path, mode, err)
	}
	return db, nil
}

// InTx runs f in one write transaction, committing when f returns nil.
func InTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
