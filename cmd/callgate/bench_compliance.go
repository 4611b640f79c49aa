package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/recording"
)

// complianceBenchOptions are the flags of `callgate bench compliance`.
type complianceBenchOptions struct {
	DSN         string
	DNC         int // numbers on the national list
	Consents    int
	Decisions   int
	Import      int // numbers imported with ImportDNC
	Policy      string
	Concurrency int
	At          string // "now", "afternoon" or RFC 3339: the instant judged
	Keep        bool
}

// command is the command line that reproduces a run (the database URL left
// out: it may hold a password).
func (o complianceBenchOptions) command() string {
	s := fmt.Sprintf("callgate bench compliance --dnc %d --consents %d --decisions %d --import %d --policy %s --concurrency %d --at %s",
		o.DNC, o.Consents, o.Decisions, o.Import, o.Policy, o.Concurrency, o.At)
	if o.Keep {
		s += " --keep"
	}
	return s
}

// complianceBenchResult is what a run measured.
type complianceBenchResult struct {
	Schema          string
	Seeded          time.Duration
	Policy          string    // id and version
	At              time.Time // instant judged; zero: the gate's clock
	Warmup          int
	Latencies       []time.Duration // sorted
	Elapsed         time.Duration   // wall time of the timed decisions
	Allowed         int
	Blocks          map[string]int // blocking verdicts by reason code
	Imported        int64
	ImportDuration  time.Duration
	ImportedEntries int64
}

// percentile returns the nearest-rank p-th quantile (0 < p ≤ 1) of the
// sorted latencies.
func (r complianceBenchResult) percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(r.Latencies)))) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Owned caller ID presented by every benchmark decision.
const benchCallerID = "+12127365000"

// runBenchCompliance implements `callgate bench compliance`: the compliance
// gate's decision latency at national-list scale and the DNC bulk import
// rate, in a throwaway schema.
func runBenchCompliance(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench compliance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o complianceBenchOptions
	fs.StringVar(&o.DSN, "database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL); a fresh schema bench_<random> is created in it")
	fs.IntVar(&o.DNC, "dnc", 10_000_000, "numbers on the national do-not-call list")
	fs.IntVar(&o.Consents, "consents", 1_000_000, "consents in the ledger")
	fs.IntVar(&o.Decisions, "decisions", 20_000, "full gate decisions to time")
	fs.IntVar(&o.Import, "import", 1_000_000, "fresh numbers to bulk-import into a new list (0: skip)")
	fs.StringVar(&o.Policy, "policy", "us", "policy preset ("+strings.Join(compliance.PresetNames(), ", ")+") or policy file")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "concurrent decision workers")
	fs.StringVar(&o.At, "at", "afternoon", `instant judged: "afternoon" (the next 19:00 UTC, within calling hours in every US zone), "now", or RFC 3339`)
	fs.BoolVar(&o.Keep, "keep", false, "keep the schema at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench compliance: unexpected argument %q", fs.Arg(0))
	}
	if o.DSN == "" {
		o.DSN = DefaultConfig().DatabaseURL
	}
	fmt.Fprintln(stdout, "command:    ", o.command())
	r, err := benchCompliance(ctx, o, stderr)
	if err != nil {
		return err
	}
	printComplianceBench(stdout, o, r)
	return nil
}

func printComplianceBench(w io.Writer, o complianceBenchOptions, r complianceBenchResult) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
	kept := "dropped"
	if o.Keep {
		kept = "kept"
	}
	fmt.Fprintf(w, "schema:      %s (%s)\n", r.Schema, kept)
	fmt.Fprintf(w, "data set:    %d numbers on a national DNC list, %d consents (seeded in %s)\n",
		o.DNC, o.Consents, r.Seeded.Round(100*time.Millisecond))
	fmt.Fprintf(w, "decisions:   %d full gate decisions (Store.Gate + compliance gate, policy %s), %d workers, after %d warm-up\n",
		len(r.Latencies), r.Policy, o.Concurrency, r.Warmup)
	at := "the gate's clock"
	if !r.At.IsZero() {
		at = r.At.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  judged at: %s\n", at)
	fmt.Fprintf(w, "  numbers:   10%% on the DNC list, 60%% with a consent (half for marketing, half for service only), 30%% neither; purpose marketing\n")
	fmt.Fprintf(w, "  latency:   p50 %s   p95 %s   p99 %s   max %s\n",
		ms(r.percentile(0.50)), ms(r.percentile(0.95)), ms(r.percentile(0.99)), ms(r.percentile(1)))
	if r.Elapsed > 0 {
		fmt.Fprintf(w, "  rate:      %.0f decisions/s\n", float64(len(r.Latencies))/r.Elapsed.Seconds())
	}
	var reasons []string
	for _, k := range slices.Sorted(maps.Keys(r.Blocks)) {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, r.Blocks[k]))
	}
	fmt.Fprintf(w, "  outcome:   %d allowed, %d blocked (verdicts: %s)\n",
		r.Allowed, len(r.Latencies)-r.Allowed, strings.Join(reasons, ", "))
	if o.Import > 0 {
		fmt.Fprintf(w, "import:      %d numbers via Store.ImportDNC (in-memory CSV, new list) in %s: %.0f numbers/s\n",
			r.Imported, r.ImportDuration.Round(time.Millisecond), float64(r.Imported)/r.ImportDuration.Seconds())
	}
}

// benchCompliance runs the benchmark, logging progress to log.
func benchCompliance(ctx context.Context, o complianceBenchOptions, log io.Writer) (res complianceBenchResult, err error) {
	switch {
	case o.DNC < 1 || o.DNC > postgres.MaxBenchDNC:
		return res, fmt.Errorf("bench compliance: --dnc must be in 1…%d", postgres.MaxBenchDNC)
	case o.Consents < 1 || o.Consents > postgres.MaxBenchConsents:
		return res, fmt.Errorf("bench compliance: --consents must be in 1…%d", postgres.MaxBenchConsents)
	case o.Import < 0 || o.Import > postgres.MaxBenchImport:
		return res, fmt.Errorf("bench compliance: --import must be in 0…%d", postgres.MaxBenchImport)
	case o.Decisions < 1 || o.Concurrency < 1:
		return res, errors.New("bench compliance: --decisions and --concurrency must be positive")
	}
	policy, err := loadPolicy(o.Policy)
	if err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	gate, err := compliance.New(compliance.StaticPolicy(policy))
	if err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	res.Policy = fmt.Sprintf("%s v%d", policy.ID, policy.Version)
	if res.At, err = benchInstant(o.At, time.Now()); err != nil {
		return res, err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "%s bench compliance: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}

	schema, err := postgres.CreateBenchSchema(ctx, o.DSN)
	if err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	res.Schema = schema
	logf("created schema %s", schema)
	defer func() {
		if o.Keep {
			logf("kept schema %s", schema)
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if derr := postgres.DropBenchSchema(dctx, o.DSN, schema); derr != nil {
			err = errors.Join(err, fmt.Errorf("bench compliance: %w", derr))
			return
		}
		logf("dropped schema %s", schema)
	}()
	db, err := postgres.OpenSchema(ctx, o.DSN, schema, max(8, o.Concurrency+2))
	if err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	store := postgres.NewStore(db)
	// A schema of its own, so keys of its own: phone numbers are sealed.
	keys, err := pii.New(recording.NewMemoryKeyring())
	if err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	store.SetPersonalData(keys)

	// The data set.
	start := time.Now()
	if _, err := store.CreateDNCList(ctx, controller.DNCList{ID: "national", Name: "national registry",
		Kind: compliance.KindNational, Source: "bench", LastScrubAt: time.Now()}); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	if err := store.AddOwnedNumber(ctx, controller.DefaultTenant, benchCallerID); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	logf("seeding %d DNC entries", o.DNC)
	if err := store.SeedBenchDNC(ctx, "national", o.DNC); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	logf("seeding %d consents", o.Consents)
	if err := store.SeedBenchConsents(ctx, controller.DefaultTenant, o.Consents); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	// Seeded in the clear by SQL; sealed as a controller seals them at start.
	logf("sealing the consents' numbers")
	if _, err := store.SealClearNumbers(ctx); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	logf("vacuuming the seeded tables")
	if err := store.SettleBench(ctx); err != nil {
		return res, fmt.Errorf("bench compliance: %w", err)
	}
	res.Seeded = time.Since(start)
	logf("seeded in %s", res.Seeded.Round(time.Second))

	// (1) Decisions.
	res.Warmup = min(1000, o.Decisions/10)
	logf("warming up with %d decisions", res.Warmup)
	if _, err := runDecisions(ctx, store, gate, o, res.At, res.Warmup, 1, nil); err != nil {
		return res, err
	}
	logf("timing %d decisions from %d workers", o.Decisions, o.Concurrency)
	res.Blocks = map[string]int{}
	start = time.Now()
	decisions, err := runDecisions(ctx, store, gate, o, res.At, o.Decisions, 2, res.Blocks)
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, err
	}
	for _, d := range decisions {
		res.Latencies = append(res.Latencies, d.latency)
		if d.allow {
			res.Allowed++
		}
	}
	slices.Sort(res.Latencies)

	// (2) Bulk import.
	if o.Import > 0 {
		list, err := store.CreateDNCList(ctx, controller.DNCList{ID: "bench-import", Name: "bench import",
			Kind: compliance.KindNational, Source: "bench"})
		if err != nil {
			return res, fmt.Errorf("bench compliance: %w", err)
		}
		upload := benchImportCSV(o.Import)
		logf("importing %d numbers (%d bytes of CSV)", o.Import, len(upload))
		start = time.Now()
		rep, err := store.ImportDNC(ctx, list.ID, bytes.NewReader(upload), nil, postgres.DNCImportOptions{Scrub: true})
		res.ImportDuration = time.Since(start)
		if err != nil {
			return res, fmt.Errorf("bench compliance: %w", err)
		}
		if rep.Valid != int64(o.Import) || rep.Invalid != 0 || rep.Added != int64(o.Import) {
			return res, fmt.Errorf("bench compliance: import report %+v, want %d numbers added", rep, o.Import)
		}
		res.Imported, res.ImportedEntries = rep.Valid, rep.Entries
	}
	return res, nil
}

// benchInstant parses --at.
func benchInstant(s string, now time.Time) (time.Time, error) {
	switch s {
	case "now":
		return time.Time{}, nil
	case "afternoon":
		at := time.Date(now.Year(), now.Month(), now.Day(), 19, 0, 0, 0, time.UTC)
		if at.Before(now) {
			at = at.AddDate(0, 0, 1)
		}
		return at, nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return at, fmt.Errorf(`bench compliance: --at: want "afternoon", "now" or RFC 3339: %w`, err)
	}
	return at, nil
}

type timedDecision struct {
	latency time.Duration
	allow   bool
}

// runDecisions runs n gate decisions from o.Concurrency workers on numbers
// drawn with seed, counting blocking verdicts by reason into blocks (if not
// nil).
func runDecisions(ctx context.Context, store *postgres.Store, gate *compliance.Gate, o complianceBenchOptions, at time.Time, n int, seed uint64, blocks map[string]int) ([]timedDecision, error) {
	out := make([]timedDecision, n)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			local := map[string]int{}
			defer func() {
				mu.Lock()
				for k, v := range local {
					if blocks != nil {
						blocks[k] += v
					}
				}
				mu.Unlock()
			}()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				number := benchDrawNumber(r, o)
				req := controller.CheckRequest{TenantID: controller.DefaultTenant, To: number, From: benchCallerID,
					Purpose: controller.PurposeMarketing, Stage: controller.StageCreate, At: at}
				start := time.Now()
				d, err := store.Gate(ctx, "", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
					return gate.Check(ctx, req, l)
				})
				lat := time.Since(start)
				if err == nil {
					err = benchCheckDecision(d)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("bench compliance: decision on %s: %w", controller.MaskNumber(number), err)
					}
					mu.Unlock()
					next.Store(int64(n)) // stop every worker
					return
				}
				out[i] = timedDecision{latency: lat, allow: d.Allow}
				for _, v := range d.Verdicts {
					if !v.Allow {
						local[v.Reason]++
					}
				}
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// benchCheckDecision fails on a decision that shows the benchmark measured
// something other than a full pass: a number the gate could not parse or a
// rule that failed.
func benchCheckDecision(d controller.Decision) error {
	for _, v := range d.Verdicts {
		if v.Reason == controller.ReasonNumberInvalid || v.Reason == controller.ReasonRuleError {
			return fmt.Errorf("rule %s: %s: %s", v.Rule, v.Reason, v.Detail)
		}
	}
	return nil
}

// benchDrawNumber draws a callee: 10 % on the DNC list, 60 % with a consent
// (half of them for marketing), 30 % neither.
func benchDrawNumber(r *rand.Rand, o complianceBenchOptions) string {
	switch p := r.IntN(10); {
	case p == 0:
		return postgres.BenchDNCNumber(r.IntN(o.DNC), o.DNC)
	case p <= 6:
		return postgres.BenchConsentNumber(r.IntN(o.Consents), o.Consents)
	default:
		return postgres.BenchOtherNumber(r.IntN(1 << 24))
	}
}

// benchImportCSV is an upload of n distinct numbers, none seeded, in random
// order, with a header row.
func benchImportCSV(n int) []byte {
	var buf bytes.Buffer
	buf.Grow(16 * (n + 1))
	buf.WriteString("number\n")
	r := rand.New(rand.NewPCG(3, 4))
	for _, i := range r.Perm(n) {
		buf.WriteString(postgres.BenchOtherNumber(i))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}
