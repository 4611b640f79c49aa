package postgres

// Benchmark tooling: `callgate bench compliance` builds a national-scale data
// set in a throwaway schema with these functions. They are not used by the
// controller itself.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchNPAs are the US area codes (ascending) the benchmark's synthetic
// numbers are spread over, across every US time zone. Every number
// BenchDNCNumber, BenchConsentNumber and BenchOtherNumber return is a valid
// US number: +1, one of these, then a 7-digit subscriber number whose
// exchange is 200–999.
var BenchNPAs = []int{206, 212, 214, 215, 303, 305, 312, 404, 415, 602, 617, 702, 713, 801, 808, 907}

// Subscriber-number ranges of the benchmark's synthetic numbers, disjoint so
// that a DNC number, a consented number and another number never coincide.
const (
	benchDNCBase     = 2_000_000 // DNC entries: 2 000 000 … 4 999 999 in each area code
	benchConsentBase = 6_000_000 // consents: 6 000 000 … 8 499 999
	benchOtherBase   = 8_500_000 // neither: 8 500 000 … 9 999 999
	benchDNCSpan     = benchConsentBase - 1_000_000 - benchDNCBase
	benchConsentSpan = benchOtherBase - benchConsentBase
	benchOtherSpan   = 10_000_000 - benchOtherBase
)

// MaxBenchDNC and MaxBenchConsents are the largest data sets the synthetic
// numbering holds.
const (
	MaxBenchDNC      = benchDNCSpan * 16
	MaxBenchConsents = benchConsentSpan * 16
	MaxBenchImport   = benchOtherSpan * 16 // distinct BenchOtherNumber values
)

// benchPer is how many of n numbers go in each area code.
func benchPer(n int) int { return max(1, (n+len(BenchNPAs)-1)/len(BenchNPAs)) }

func benchNumber(base, i, n int) string {
	per := benchPer(n)
	return "+1" + strconv.Itoa(BenchNPAs[i/per]) + strconv.Itoa(base+i%per)
}

// BenchDNCNumber is the i-th (0 ≤ i < n) of the n numbers SeedBenchDNC puts
// on a list.
func BenchDNCNumber(i, n int) string { return benchNumber(benchDNCBase, i, n) }

// BenchConsentNumber is the i-th (0 ≤ i < n) of the n numbers
// SeedBenchConsents gives a consent: for marketing when i is even, for
// service when it is odd.
func BenchConsentNumber(i, n int) string { return benchNumber(benchConsentBase, i, n) }

// BenchOtherNumber is the i-th of numbers on no seeded list and with no
// seeded consent (i wraps around).
func BenchOtherNumber(i int) string {
	i %= benchOtherSpan * len(BenchNPAs)
	return benchNumber(benchOtherBase, i, benchOtherSpan*len(BenchNPAs))
}

// benchNumberSQL is the SQL for benchNumber as a bigint (E.164 digits), with
// the series element g, the BenchNPAs array $1, the base $2 and the count per
// area code $3.
const benchNumberSQL = `(10000000000 + ($1::int[])[1 + g / $3::int]::bigint * 10000000 + $2::int + g % $3::int)`

var benchSchemaName = regexp.MustCompile(`^bench_[0-9a-f]{16}$`)

// CreateBenchSchema creates an empty schema bench_<random> in the database
// at dsn and returns its name. Open a pool on it (OpenConfig with the
// search_path runtime parameter set to it), Migrate, and DropBenchSchema at
// the end.
func CreateBenchSchema(ctx context.Context, dsn string) (string, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	if err := execOnce(ctx, dsn, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("creating schema %s: %w", schema, err)
	}
	return schema, nil
}

// DropBenchSchema drops a schema CreateBenchSchema created, with everything
// in it. It refuses any other name.
func DropBenchSchema(ctx context.Context, dsn, schema string) error {
	if !benchSchemaName.MatchString(schema) {
		return fmt.Errorf("dropping schema %q: %w", schema, invalid("schema", fmt.Errorf("not a benchmark schema")))
	}
	if err := execOnce(ctx, dsn, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	return nil
}

// execOnce runs one statement on a connection of its own.
func execOnce(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return translate(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return translate(err)
	}
	return nil
}

// SeedBenchDNC puts the n numbers BenchDNCNumber(0…n-1, n) on the list
// listID, which must be empty: their blind indexes, computed on every core,
// sorted and copied in (binary COPY) in key order, and sets its entry count.
// Benchmark tooling: it bypasses ImportDNC.
func (s *Store) SeedBenchDNC(ctx context.Context, listID string, n int) error {
	if n < 0 || n > MaxBenchDNC {
		return fmt.Errorf("seeding do-not-call list: %w", invalid("n", fmt.Errorf("%d is not in 0…%d", n, MaxBenchDNC)))
	}
	what := fmt.Sprintf("seeding do-not-call list %s", listID)
	per := benchPer(n)
	digits := make([]int64, n)
	for i := range digits {
		digits[i] = 10_000_000_000 + int64(BenchNPAs[i/per])*10_000_000 + int64(benchDNCBase+i%per)
	}
	keys, err := digitsKeys(s.pd, digits)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	slices.Sort(keys)
	var ref int32
	if err := s.db.pool.QueryRow(ctx, `SELECT ref FROM dnc_lists WHERE id = $1`, listID).Scan(&ref); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	if _, err := s.db.pool.CopyFrom(ctx, pgx.Identifier{"dnc_index"}, []string{"number_key", "list_ref"},
		pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) { return []any{keys[i], ref}, nil })); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	return s.benchSeed(ctx, what,
		[]string{`UPDATE dnc_lists SET entries = entries + $2 WHERE id = $1`, `ANALYZE dnc_index`},
		[][]any{{listID, n}, nil})
}

// SeedBenchConsents gives tenant (which must exist) the n consents of
// BenchConsentNumber(0…n-1, n) — even i for marketing, odd i for service —
// given up to 700 days ago and expiring in a year, with one set-based INSERT.
// Benchmark tooling: it bypasses CreateConsent.
func (s *Store) SeedBenchConsents(ctx context.Context, tenant string, n int) error {
	if n < 0 || n > MaxBenchConsents {
		return fmt.Errorf("seeding consents: %w", invalid("n", fmt.Errorf("%d is not in 0…%d", n, MaxBenchConsents)))
	}
	return s.benchSeed(ctx, "seeding consents",
		[]string{`
			INSERT INTO consents (id, tenant_id, number, purpose, source, proof_ref, digit, given_at, expires_at)
			SELECT gen_random_uuid(), $4::text, '+' || ` + benchNumberSQL + `::text,
				(ARRAY['marketing', 'service'])[1 + g % 2], 'ivr', 'bench-' || g, '1',
				now() - (g % 700) * interval '1 day', now() + interval '1 year'
			FROM generate_series(0, $5::int - 1) g`,
			`ANALYZE consents`},
		[][]any{{BenchNPAs, benchConsentBase, benchPer(n), tenant, n}, nil})
}

// SettleBench vacuums and analyses the tables the bench seeds, as a
// database in service is between bulk loads: otherwise autovacuum works
// through the million rows the sealing rewrote while decisions are timed.
// Benchmark tooling.
func (s *Store) SettleBench(ctx context.Context) error {
	return s.benchSeed(ctx, "vacuuming the seeded tables",
		[]string{`VACUUM (ANALYZE) consents, dnc_index, dnc_lists, owned_numbers`}, [][]any{nil})
}

// benchSeed runs statements on one connection, with the memory for index
// builds raised.
func (s *Store) benchSeed(ctx context.Context, what string, stmts []string, args [][]any) error {
	conn, err := s.db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '512MB'`); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	defer conn.Exec(context.Background(), `RESET maintenance_work_mem`) //nolint:errcheck // best effort
	for i, q := range stmts {
		if _, err := conn.Exec(ctx, q, args[i]...); err != nil {
			return fmt.Errorf("%s: %w", what, translate(err))
		}
	}
	return nil
}

// OpenSchema opens a pool on dsn whose connections use schema as their
// search path, with at most maxConns connections (0: the default).
func OpenSchema(ctx context.Context, dsn, schema string, maxConns int) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	return OpenConfig(ctx, cfg)
}
