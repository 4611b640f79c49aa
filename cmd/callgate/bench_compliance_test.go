package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// TestBenchCompliance runs `callgate bench compliance` with tiny sizes, so
// that the command behind the README's compliance figures keeps working.
func TestBenchCompliance(t *testing.T) {
	dsn := os.Getenv(pgtest.EnvDSN)
	if dsn == "" {
		t.Fatalf("%s is not set: `export %s=$(scripts/pg.sh dsn)`", pgtest.EnvDSN, pgtest.EnvDSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "compliance", "--database-url", dsn, "--dnc", "5000", "--consents", "2000",
		"--decisions", "400", "--import", "3000", "--concurrency", "3"}, func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench compliance: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"command:     callgate bench compliance --dnc 5000 --consents 2000 --decisions 400 --import 3000 --policy us --concurrency 3 --at afternoon",
		"400 full gate decisions", "p99 ", "decisions/s",
		"dnc_list ", "consent_missing ", // the draw hits the DNC list and misses consents
		" allowed, ",
		"import:      3000 numbers via Store.ImportDNC", "numbers/s",
		"(dropped)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !strings.Contains(stderr.String(), "dropped schema bench_") {
		t.Errorf("schema not dropped:\n%s", stderr.String())
	}
}

// TestBenchNumbersValid checks the synthetic numbers are valid US numbers
// (an invalid one would skip every rule but the number check).
func TestBenchNumbersValid(t *testing.T) {
	for _, n := range []string{
		postgres.BenchDNCNumber(0, postgres.MaxBenchDNC), postgres.BenchDNCNumber(postgres.MaxBenchDNC-1, postgres.MaxBenchDNC),
		postgres.BenchConsentNumber(0, 1), postgres.BenchConsentNumber(postgres.MaxBenchConsents-1, postgres.MaxBenchConsents),
		postgres.BenchOtherNumber(0), postgres.BenchOtherNumber(postgres.MaxBenchImport - 1),
	} {
		if _, err := compliance.ParseNumber(n, ""); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
