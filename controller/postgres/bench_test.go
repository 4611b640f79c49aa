package postgres_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// BenchmarkCreateCall measures API-side call creation from 8 concurrent
// clients, half of them with an idempotency key.
func BenchmarkCreateCall(b *testing.B) {
	store := pgtest.New(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4) // 4×GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			c := newCall(int(i % 10000))
			if i%2 == 0 {
				c.IdempotencyKey = strconv.FormatInt(i, 10)
			}
			if _, _, err := store.CreateCall(ctx, c, "h"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkClaimAndMark measures the dialer's hot path: claim a batch of due
// attempts and mark them originating, on 2 switches at once.
func BenchmarkClaimAndMark(b *testing.B) {
	store := pgtest.New(b)
	ctx := context.Background()
	fill(b, store, b.N)
	const batch = 50
	var claimed atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, sw := range []string{"fs1", "fs2"} {
		wg.Go(func() {
			for {
				calls, err := store.ClaimAttempts(ctx, sw, "bench-"+sw, batch)
				if err != nil {
					b.Error(err)
					return
				}
				if len(calls) == 0 {
					return
				}
				if err := store.MarkOriginating(ctx, ids(calls), sw, time.Now()); err != nil {
					b.Error(err)
					return
				}
				claimed.Add(int64(len(calls)))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	require.Equal(b, int64(b.N), claimed.Load())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCallLifecycle measures a whole call's database work: create,
// claim, mark originating, then ringing, answer and hangup saved in batches
// as an event loop would.
func BenchmarkCallLifecycle(b *testing.B) {
	store := pgtest.New(b)
	ctx := context.Background()
	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Go(func() { fill(b, store, b.N) }) // API clients

	at := time.Now()
	done := 0
	for done < b.N {
		calls, err := store.ClaimAttempts(ctx, "fs1", "bench", 100)
		require.NoError(b, err)
		if len(calls) == 0 {
			require.NoError(b, store.WaitForAttempts(ctx, 10*time.Millisecond))
			continue
		}
		require.NoError(b, store.MarkOriginating(ctx, ids(calls), "fs1", at))
		var ups []controller.CallUpdate
		for _, c := range calls {
			c.State = controller.CallOriginating
			for seq, ev := range []controller.ChannelEvent{
				{Kind: controller.EventProgress, Name: "CHANNEL_PROGRESS"},
				{Kind: controller.EventAnswer, Name: "CHANNEL_ANSWER"},
				{Kind: controller.EventHangupComplete, Name: "CHANNEL_HANGUP_COMPLETE", Answered: true,
					HangupCause: "NORMAL_CLEARING", Billsec: 3, Duration: 4},
			} {
				ev.CallID, ev.Switch, ev.Sequence, ev.At = c.ID, "fs1", uint64(seq+1), at
				from := c.State
				_, err := controller.Apply(&c, ev)
				require.NoError(b, err)
				ups = append(ups, controller.CallUpdate{Call: c, From: from, Event: ev})
			}
		}
		require.NoError(b, store.SaveCallUpdates(ctx, ups))
		done += len(calls)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// fill creates n calls from 8 concurrent clients.
func fill(tb testing.TB, store *postgres.Store, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, _, err := store.CreateCall(context.Background(), newCall(int(i%10000)), ""); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
