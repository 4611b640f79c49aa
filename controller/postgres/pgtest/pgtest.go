// Package pgtest gives each test a fresh PostgreSQL schema with callgate's
// migrations applied, on the database named by CALLGATE_TEST_DATABASE_URL.
// Every function fails the test if that variable is unset or the database is
// unreachable.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/recording"
)

// EnvDSN names the environment variable holding the test database's DSN.
const EnvDSN = "CALLGATE_TEST_DATABASE_URL"

// New returns a store on a fresh, migrated schema that is dropped when the
// test ends.
func New(t testing.TB) *postgres.Store {
	t.Helper()
	return StoreOn(NewDB(t))
}

// StoreOn returns a store on db that seals personal data with the test
// process's keys (PersonalData).
func StoreOn(db *postgres.DB) *postgres.Store {
	s := postgres.NewStore(db)
	s.SetPersonalData(PersonalData())
	return s
}

// PersonalData returns the keys every test store of the process seals and
// indexes phone numbers with: an in-memory keyring, so stores of one test
// on one schema (two controllers) read each other's rows.
func PersonalData() *pii.Keys {
	testKeysOnce.Do(func() {
		k, err := pii.New(recording.NewMemoryKeyring())
		if err != nil {
			panic(err)
		}
		testKeys = k
	})
	return testKeys
}

var (
	testKeysOnce sync.Once
	testKeys     *pii.Keys
)

// NewDB returns a pool whose connections use a fresh schema t_<random> as
// their search_path, with the migrations applied. The pool is closed and the
// schema dropped when the test ends.
func NewDB(t testing.TB) *postgres.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.OpenConfig(ctx, Config(t))
	if err != nil {
		t.Fatalf("pgtest: %v (is the test database running? `scripts/pg.sh start`)", err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return db
}

// Config creates a fresh, empty schema, dropped when the test ends, and
// returns a pool configuration (at most 8 connections) whose connections use
// it as their search_path. Pools opened on it must be closed before the test
// ends.
func Config(t testing.TB) *pgxpool.Config {
	t.Helper()
	dsn, schema := newSchema(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: parsing %s: %v", EnvDSN, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	return cfg
}

// DSN creates a fresh schema with the migrations applied, dropped when the
// test ends, and returns a DSN whose connections use it as their search_path,
// for code that opens its own pool (postgres.Open). Pools opened on it must
// be closed before the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	dsn, schema := newSchema(t)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	} else {
		dsn = strings.TrimSpace(dsn) + " search_path=" + schema
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// newSchema creates schema t_<random> and drops it when the test ends.
func newSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	dsn = os.Getenv(EnvDSN)
	if dsn == "" {
		t.Fatalf("%s is not set: run `make test`, or `scripts/pg.sh start` and "+
			"`export %s=$(scripts/pg.sh dsn)`", EnvDSN, EnvDSN)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema = "t_" + hex.EncodeToString(b)
	exec(t, dsn, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, dsn, "DROP SCHEMA "+schema+" CASCADE") })
	return dsn, schema
}

// exec runs one statement on a connection of its own.
func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v (is it running? `scripts/pg.sh start`)", EnvDSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}
