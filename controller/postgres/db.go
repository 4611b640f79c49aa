// Package postgres implements callgate's stores on PostgreSQL with pgx. All of
// callgate's SQL lives here. The attempts table is the dialling queue: switch
// owners claim due attempts with FOR UPDATE SKIP LOCKED and are woken by
// LISTEN/NOTIFY.
package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/callgate/callgate/migrations"
)

// DB is a pool of connections to callgate's database, plus the one connection
// that listens for queued attempts.
type DB struct {
	pool     *pgxpool.Pool
	listener *listener
}

// Open connects to the database at dsn (a postgres:// URL or key=value string)
// and checks it is reachable. Unless the DSN sets pool_max_conns, the pool
// holds up to max(8, 4×CPUs) connections. Returns EUNAVAILABLE if the database
// cannot be reached, EINVALID for a malformed DSN.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing database DSN: %w", invalid("dsn", err))
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(max(8, 4*runtime.NumCPU()))
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open with a parsed pool configuration, for callers that set
// runtime parameters such as search_path. Returns EUNAVAILABLE if the database
// cannot be reached.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*DB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening database pool: %w", translate(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to database: %w", translate(err))
	}
	return &DB{pool: pool, listener: newListener(pool)}, nil
}

// Close stops the listener and closes every connection.
func (db *DB) Close() {
	db.listener.close()
	db.pool.Close()
}

// Pool returns the underlying pgx pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Migrate applies every pending migration to the database's current schema.
// It is safe to run from several processes at once: a session-level advisory
// lock, keyed by the schema, serialises them.
func (db *DB) Migrate(ctx context.Context) error { return migrate(ctx, db.pool) }

// Migrate connects to dsn, applies every pending migration and disconnects.
func Migrate(ctx context.Context, dsn string) error {
	db, err := Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx)
}

// migrate runs goose on pool, holding an advisory lock derived from the current
// schema so that two processes migrating the same schema take turns while
// tests in different schemas never wait for each other.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("migrating: finding the current schema: %w", translate(err))
	}
	h := fnv.New64a()
	h.Write([]byte("callgate migrations " + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 600), // retry each second for up to 10 minutes
	)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true),
		// A database migrated by a build whose migrations had a gap (006
		// landed before 005) gets the missing one applied, not an error.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrating schema %s: %w", schema, translate(err))
	}
	return nil
}
