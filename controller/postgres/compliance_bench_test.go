package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// importCSV is an upload of n distinct numbers in random order, with a
// header row.
func importCSV(n int) []byte {
	var buf bytes.Buffer
	buf.Grow(n * 14)
	buf.WriteString("number\n")
	r := rand.New(rand.NewPCG(1, 2))
	for _, i := range r.Perm(n) {
		buf.WriteString("+1")
		buf.WriteString(strconv.FormatInt(2000000000+int64(i)*37, 10))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// BenchmarkImportDNC loads a 1 000 000-row upload into a new list — sorted
// in memory (the default), and streamed through the staging table as an
// upload bigger than SortRows would be — and again into a list that already
// holds it (an idempotent re-import). Target: ≥ 500 000 numbers/s.
func BenchmarkImportDNC(b *testing.B) {
	const rows = 1_000_000
	store := pgtest.New(b)
	ctx := context.Background()
	upload := importCSV(rows)
	run := func(b *testing.B, sortRows int, listID func(i int) string) {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep, err := store.ImportDNC(ctx, listID(i), bytes.NewReader(upload), nil,
				postgres.DNCImportOptions{Scrub: true, SortRows: sortRows})
			if err != nil {
				b.Fatal(err)
			}
			if rep.Valid != rows || rep.Invalid != 0 {
				b.Fatalf("report: %+v", rep)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "numbers/s")
	}
	newList := func(b *testing.B) string {
		l, err := store.CreateDNCList(ctx, controller.DNCList{Name: "bench", Kind: "national"})
		if err != nil {
			b.Fatal(err)
		}
		return l.ID
	}
	for _, mode := range []struct {
		name     string
		sortRows int
	}{{"new-list", 0}, {"new-list-streaming", 1 << 16}} {
		b.Run(mode.name, func(b *testing.B) {
			b.StopTimer()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = newList(b)
			}
			b.StartTimer()
			run(b, mode.sortRows, func(i int) string { return ids[i] })
		})
	}
	b.Run("reimport", func(b *testing.B) {
		b.StopTimer()
		id := newList(b)
		if _, err := store.ImportDNC(ctx, id, bytes.NewReader(upload), nil, postgres.DNCImportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		run(b, 0, func(int) string { return id })
	})
}

// bigData gates the benchmarks that build tens of millions of rows.
func bigData(b *testing.B) {
	b.Helper()
	if os.Getenv("CALLGATE_BENCH_BIG") != "1" {
		b.Skip("set CALLGATE_BENCH_BIG=1 to build 10 000 000 DNC entries and 1 000 000 consents")
	}
}

// Sizes of the big data set.
const (
	bigDNC      = 10_000_000
	bigConsents = 1_000_000
)

// dncNumber is the i-th number (0 ≤ i < bigDNC) on the big national list.
func dncNumber(i int) string { return "+1" + strconv.FormatInt(2000000000+int64(i)*37, 10) }

// consentNumber is the i-th number (0 ≤ i < bigConsents) with a consent.
func consentNumber(i int) string { return "+44" + strconv.FormatInt(7000000000+int64(i), 10) }

// fillBig builds the big data set with set-based inserts: a national list of
// bigDNC numbers, an internal list, bigConsents consents, owned caller IDs,
// and a few refusals and attempts; then vacuums and analyzes.
func fillBig(b *testing.B, store *postgres.Store) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for _, l := range []controller.DNCList{
		{ID: "national", Name: "national", Kind: "national", LastScrubAt: time.Now()},
		{ID: "internal", TenantID: controller.DefaultTenant, Name: "internal", Kind: "internal"},
	} {
		if _, err := store.CreateDNCList(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	pool := store.DB().Pool()
	for _, q := range []string{
		`SET maintenance_work_mem = '512MB'`,
		fmt.Sprintf(`INSERT INTO dnc_entries (number, list_ref)
			SELECT 12000000000 + g * 37, (SELECT ref FROM dnc_lists WHERE id = 'national')
			FROM generate_series(0, %d) g`, bigDNC-1),
		fmt.Sprintf(`UPDATE dnc_lists SET entries = %d WHERE id = 'national'`, bigDNC),
		`INSERT INTO dnc_entries (number, list_ref)
			SELECT 12000000000 + g * 37 * 1000, (SELECT ref FROM dnc_lists WHERE id = 'internal')
			FROM generate_series(0, 9999) g`,
		`UPDATE dnc_lists SET entries = 10000 WHERE id = 'internal'`,
		fmt.Sprintf(`INSERT INTO consents (id, tenant_id, number, purpose, source, proof_ref, digit, given_at, expires_at)
			SELECT gen_random_uuid(), 'default', '+44' || (7000000000 + g)::text,
				(ARRAY['marketing', 'service'])[1 + g %% 2], 'ivr', 'rec-' || g, '1',
				now() - (g %% 700) * interval '1 day', now() + interval '1 year'
			FROM generate_series(0, %d) g`, bigConsents-1),
		`INSERT INTO owned_numbers (tenant_id, number)
			SELECT 'default', '+1555999' || lpad(g::text, 4, '0') FROM generate_series(0, 999) g`,
		`INSERT INTO refusals (id, number, source, at, until)
			SELECT gen_random_uuid(), '+44' || (7000000000 + g * 100)::text, 'ivr', now(), now() + interval '90 days'
			FROM generate_series(0, 9999) g`,
		`VACUUM ANALYZE dnc_entries`,
		`VACUUM ANALYZE consents`,
		`VACUUM ANALYZE refusals`,
		`VACUUM ANALYZE owned_numbers`,
		`VACUUM ANALYZE dnc_lists`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.Logf("built %d DNC entries and %d consents in %s", bigDNC, bigConsents, time.Since(start).Round(time.Second))
}

// latencies records per-operation durations and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B, prefix string) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(p float64) float64 { return float64(l[min(len(l)-1, int(p*float64(len(l))))].Nanoseconds()) }
	b.ReportMetric(at(0.50), prefix+"p50-ns")
	b.ReportMetric(at(0.99), prefix+"p99-ns")
}

// BenchmarkDNCLookup measures DNCHits against a national list of 10 000 000
// numbers, half the probes hits: each one indexed query, inside a decision's
// transaction (for numbers other than the one the decision locked, whose
// hits the lock reads in advance). Opt-in: CALLGATE_BENCH_BIG=1.
func BenchmarkDNCLookup(b *testing.B) {
	bigData(b)
	store := pgtest.New(b)
	fillBig(b, store)
	b.Run("DNCHits", func(b *testing.B) {
		r := rand.New(rand.NewPCG(3, 4))
		lookups(b, store, func(ctx context.Context, l controller.Lookup, i int) error {
			number := dncNumber(r.IntN(bigDNC))
			if i%2 == 1 {
				number = "+1" + strconv.FormatInt(3000000000+int64(r.IntN(bigDNC)), 10) // a miss
			}
			hits, err := l.DNCHits(ctx, "", number)
			if err == nil && (len(hits) == 0) != (i%2 == 1) {
				err = fmt.Errorf("%s: %d hits", number, len(hits))
			}
			return err
		})
	})
}

// lookups runs b.N lookups, timing each, inside one decision's transaction.
func lookups(b *testing.B, store *postgres.Store, lookup func(context.Context, controller.Lookup, int) error) {
	b.Helper()
	lat := make(latencies, 0, b.N)
	_, err := store.Gate(context.Background(), "", "+15550000000", func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if err := lookup(ctx, l, i); err != nil {
				return controller.Decision{}, err
			}
			lat = append(lat, time.Since(start))
		}
		return controller.Decision{}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	lat.report(b, "lookup-")
}

// BenchmarkConsentLookup measures ActiveConsent among 1 000 000 consents:
// each one indexed query, as in BenchmarkDNCLookup. Opt-in:
// CALLGATE_BENCH_BIG=1.
func BenchmarkConsentLookup(b *testing.B) {
	bigData(b)
	store := pgtest.New(b)
	fillBig(b, store)
	b.Run("ActiveConsent", func(b *testing.B) {
		r := rand.New(rand.NewPCG(5, 6))
		lookups(b, store, func(ctx context.Context, l controller.Lookup, i int) error {
			i = r.IntN(bigConsents)
			c, err := l.ActiveConsent(ctx, "", consentNumber(i), controller.PurposeMarketing)
			if err == nil && (c == nil) != (i%2 == 1) { // odd numbers consented for service only
				err = fmt.Errorf("consent %d: %v", i, c)
			}
			return err
		})
	})
}

// fullPass calls every Lookup method once, as the gate's rules would.
func fullPass(number, from string) postgres.DecideFunc {
	return func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		now := time.Now()
		d := controller.Decision{Stage: controller.StageCreate, Number: number, DecidedAt: now, PolicyID: "bench", PolicyVersion: 1}
		block := func(reason string) { d.Reasons = append(d.Reasons, reason) }
		c, err := l.ActiveConsent(ctx, "", number, controller.PurposeMarketing)
		if err != nil {
			return d, err
		}
		if c == nil || c.RevokedAt != nil || (c.ExpiresAt != nil && !c.ExpiresAt.After(now)) {
			block(controller.ReasonConsentMissing)
		}
		r, err := l.ActiveRefusal(ctx, number, now)
		if err != nil {
			return d, err
		}
		if r != nil {
			block(controller.ReasonRefused)
		}
		hits, err := l.DNCHits(ctx, "", number)
		if err != nil {
			return d, err
		}
		if len(hits) > 0 {
			block(controller.ReasonDNCList)
		}
		lists, err := l.DNCLists(ctx, "")
		if err != nil {
			return d, err
		}
		for _, dl := range lists {
			if dl.Kind == "national" && now.Sub(dl.LastScrubAt) > 31*24*time.Hour {
				block(controller.ReasonDNCScrubStale)
			}
		}
		n, err := l.CountAttempts(ctx, number, now.Add(-24*time.Hour))
		if err != nil {
			return d, err
		}
		if n >= 15 {
			block(controller.ReasonCapDaily)
		}
		owned, err := l.CallerIDOwned(ctx, "", from)
		if err != nil {
			return d, err
		}
		if !owned {
			block(controller.ReasonCallerIDNotOwned)
		}
		d.Allow = len(d.Reasons) == 0
		return d, nil
	}
}

// BenchmarkDecision measures a whole decision — the number's lock and all six
// Lookup methods — with 10 000 000 DNC entries and 1 000 000 consents: as a
// dry run (Gate), and creating the call (CreateCallGated), sequentially and
// from 8 concurrent clients on distinct numbers. Opt-in:
// CALLGATE_BENCH_BIG=1.
func BenchmarkDecision(b *testing.B) {
	bigData(b)
	store := pgtest.New(b)
	fillBig(b, store)
	ctx := context.Background()
	pick := func(r *rand.Rand) string {
		if r.IntN(10) == 0 {
			return dncNumber(r.IntN(bigDNC))
		}
		return consentNumber(r.IntN(bigConsents))
	}
	b.Run("Gate", func(b *testing.B) {
		r := rand.New(rand.NewPCG(7, 8))
		lat := make(latencies, 0, b.N)
		for i := 0; i < b.N; i++ {
			number := pick(r)
			start := time.Now()
			if _, err := store.Gate(ctx, "", number, fullPass(number, "+15559990001")); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b, "decision-")
	})
	b.Run("CreateCallGated", func(b *testing.B) {
		r := rand.New(rand.NewPCG(9, 10))
		lat := make(latencies, 0, b.N)
		for i := 0; i < b.N; i++ {
			number := pick(r)
			c := controller.Call{ID: controller.CallID(uuid.NewString()), To: number, From: "+15559990001"}
			start := time.Now()
			if _, _, _, err := store.CreateCallGated(ctx, c, "", fullPass(number, c.From)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b, "decision-")
	})
	b.Run("CreateCallGated-8clients", func(b *testing.B) {
		b.SetParallelism(4) // 4×GOMAXPROCS clients
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 11))
			for pb.Next() {
				number := pick(r)
				c := controller.Call{To: number, From: "+15559990001"}
				if _, _, _, err := store.CreateCallGated(ctx, c, "", fullPass(number, c.From)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
}
