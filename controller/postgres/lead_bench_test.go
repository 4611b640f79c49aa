package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// BenchmarkInsertLeads adds leads to a list in batches of 20 000: fresh
// (binary COPY straight in) and not (COPY into a temporary table, then one
// deduplicating INSERT).
func BenchmarkInsertLeads(b *testing.B) {
	for _, fresh := range []bool{true, false} {
		b.Run(fmt.Sprintf("fresh=%v", fresh), func(b *testing.B) { benchInsertLeads(b, fresh) })
	}
}

func benchInsertLeads(b *testing.B, fresh bool) {
	ctx := context.Background()
	s := pgtest.New(b)
	l, err := s.CreateLeadList(ctx, controller.DefaultTenant, "bench")
	if err != nil {
		b.Fatal(err)
	}
	const batch = 20_000
	n := 0
	for b.Loop() {
		leads := make([]controller.Lead, batch)
		for i := range leads {
			leads[i] = controller.Lead{Phone: fmt.Sprintf("+1212%07d", n), Name: "Lead",
				Tags: map[string]string{"region": "Nanshan", "size": "small"}, Fields: map[string]string{"account": "A1"}}
			n++
		}
		if _, err := s.InsertLeads(ctx, controller.DefaultTenant, l.ID, leads, fresh); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
