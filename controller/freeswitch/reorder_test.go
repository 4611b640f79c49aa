package freeswitch

import (
	"math/rand/v2"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestReorderBufferWindow(t *testing.T) {
	t.Parallel()
	r := newReorderBuffer[uint64](10*time.Millisecond, 100)
	push := func(ms int, seqs ...uint64) {
		for _, s := range seqs {
			r.push(s, s, at(ms))
		}
	}
	push(0, 12, 10)
	require.Empty(t, r.release(at(5), nil), "held for the window")
	push(6, 11, 30) // 11 overtakes 12 within the window
	require.Equal(t, []uint64{10, 11, 12}, r.release(at(10), nil),
		"the window of 12 and 10 ended: everything up to 12 goes, in order; 30 waits")
	dl, ok := r.deadline()
	require.True(t, ok)
	require.Equal(t, at(16), dl)
	push(12, 25)
	require.Equal(t, []uint64{25, 30}, r.release(at(16), nil))
	_, ok = r.deadline()
	require.True(t, ok, "25 still has a window entry")
	require.Empty(t, r.release(at(30), nil))
	_, ok = r.deadline()
	require.False(t, ok)

	// A late event (below what was released) goes at once and is counted.
	push(40, 20)
	require.Equal(t, []uint64{20}, r.release(at(40), nil))
	require.Equal(t, uint64(1), r.late)
}

func TestReorderBufferCapAndFlush(t *testing.T) {
	t.Parallel()
	r := newReorderBuffer[uint64](time.Hour, 3)
	for _, s := range []uint64{9, 4, 7, 5, 8} {
		r.push(s, s, at(0))
	}
	require.Equal(t, []uint64{4, 5}, r.release(at(1), nil), "over the cap the lowest go early")
	r.push(6, 6, at(1))
	require.Equal(t, []uint64{6}, r.release(at(2), nil), "over the cap again")
	require.Equal(t, []uint64{7, 8, 9}, r.flush(nil))
	require.Zero(t, r.len())
	// After a flush (new connection) sequences start afresh: no late count.
	r.push(1, 1, at(3))
	require.Empty(t, r.release(at(4), nil))
	require.Zero(t, r.late)
}

func TestReorderBufferRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		r := newReorderBuffer[uint64](time.Hour, 1<<20)
		n := 1 + rng.IntN(200)
		seqs := make([]uint64, n)
		next := uint64(1000)
		for i := range seqs {
			next += uint64(1 + rng.IntN(3)) // gaps
			seqs[i] = next
		}
		shuffled := slices.Clone(seqs)
		rng.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, s := range shuffled {
			r.push(s, s, at(0))
		}
		require.Equal(t, seqs, r.flush(nil))
	}
}

func seqEvent(seq string) *eslgo.Event {
	return &eslgo.Event{Headers: textproto.MIMEHeader{hSequence: {seq}}}
}

// TestDispatcherRestoresOrder pushes events from one goroutine each, as
// eslgo does, in shuffled order; the dispatcher delivers them in sequence
// order. The window is an hour so the result does not depend on timing; the
// flush on close releases them.
func TestDispatcherRestoresOrder(t *testing.T) {
	t.Parallel()
	var got []uint64
	var stats counters
	connected := make(chan struct{}, 1)
	d := newDispatcher(time.Hour, 1<<20, &stats, func(ev *eslgo.Event) {
		got = append(got, eventSequence(ev.Headers))
	}, func() { connected <- struct{}{} })
	go d.run()

	var want []uint64
	var wg sync.WaitGroup
	for i := range 500 {
		seq := uint64(100 + 3*i)
		want = append(want, seq)
		wg.Go(func() { d.push(seqEvent(formatUint(seq))) })
	}
	wg.Wait()
	d.mark(markConnected)
	waitFor(t, connected)
	d.close()
	require.Equal(t, want, got)
	require.Equal(t, uint64(500), stats.queued.Load())
	require.Zero(t, stats.late.Load())
}

// TestDispatcherResetFlushes: a new connection's marker delivers what the
// old connection left before any new event.
func TestDispatcherResetFlushes(t *testing.T) {
	t.Parallel()
	var got []uint64
	var stats counters
	d := newDispatcher(time.Hour, 1<<20, &stats, func(ev *eslgo.Event) {
		got = append(got, eventSequence(ev.Headers))
	}, func() {})
	go d.run()
	d.push(seqEvent("900"))
	d.push(seqEvent("800"))
	d.mark(markReset)
	d.push(seqEvent("5")) // the switch restarted: sequences start over
	d.push(seqEvent("3"))
	d.close()
	require.Equal(t, []uint64{800, 900, 3, 5}, got)
	require.Zero(t, stats.late.Load())
}

func formatUint(n uint64) string { return strconv.FormatUint(n, 10) }

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}
