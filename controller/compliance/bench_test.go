package compliance_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// BenchmarkGateCheck measures whole decisions under the US preset against
// an in-memory Lookup holding 10 000 numbers (consents, some DNC hits and
// recent attempts), reporting decisions/s and the p99 latency in ns. The
// store's own latency (indexes over millions of rows) is measured by the
// store's benchmarks, not here.
func BenchmarkGateCheck(b *testing.B) {
	now := utc(2026, 6, 10, 16, 0, 0) // 12:00 EDT
	us, _ := compliance.Preset("us")
	f := newFake()
	f.lists = []controller.DNCList{{ID: "n1", Kind: "national", LastScrubAt: now.AddDate(0, 0, -2)}}
	f.owned[tenant+"|"+ownedFrom] = true
	var numbers []string
	for i := range 10_000 {
		n := fmt.Sprintf("+1212%07d", 2_000_000+i*37)
		numbers = append(numbers, n)
		f.consents[n+"|marketing"] = &controller.Consent{ID: fmt.Sprint("c", i), Purpose: controller.PurposeMarketing, GivenAt: now.AddDate(0, -1, 0)}
		if i%10 == 0 {
			f.hits[n] = []controller.DNCHit{{ListID: "n1", ListKind: "national"}}
		}
		if i%3 == 0 {
			f.attempts[n] = []time.Time{now.Add(-time.Hour), now.Add(-2 * time.Hour)}
		}
	}
	g, err := compliance.New(compliance.StaticPolicy(us), compliance.WithNow(func() time.Time { return now }))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var durs []time.Duration
	allowed := 0
	start := time.Now()
	i := 0
	for b.Loop() {
		req := controller.CheckRequest{TenantID: tenant, To: numbers[i%len(numbers)], From: ownedFrom,
			Purpose: controller.PurposeMarketing, Stage: controller.StageDial}
		t0 := time.Now()
		d, err := g.Check(ctx, req, f)
		durs = append(durs, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if d.Allow {
			allowed++
		}
		i++
	}
	elapsed := time.Since(start)
	if allowed == 0 {
		b.Fatal("no decision allowed: the benchmark does not exercise the happy path")
	}
	slices.Sort(durs)
	b.ReportMetric(float64(len(durs))/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
}
