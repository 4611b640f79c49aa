package dialer

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// BenchmarkLeadReader parses and validates lead rows (libphonenumber), one
// core, no database.
func BenchmarkLeadReader(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("phone,name,tag:region,tag:size,account\n")
	for i := range 100_000 {
		fmt.Fprintf(&sb, "+1212%03d%04d,Lead %d,Nanshan,small,A%d\n", 200+i/10000, i%10000, i, i)
	}
	csv := sb.String()
	b.ResetTimer()
	rows := 0
	for b.Loop() {
		lr, err := NewLeadReader(strings.NewReader(csv), "", nil)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, rej, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rej != nil {
				b.Fatal(err, rej)
			}
			rows++
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
