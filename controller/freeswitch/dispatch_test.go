package freeswitch

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func seqEvent(t *testing.T, seq int) event {
	t.Helper()
	var p eventParser
	require.NoError(t, p.parse([]byte("Event-Sequence: "+strconv.Itoa(seq)+"\n\n")))
	return p.event()
}

// TestDispatcherKeepsOrder: events are delivered in the order they were
// queued, markers in their place among them, and close delivers everything
// queued before it.
func TestDispatcherKeepsOrder(t *testing.T) {
	t.Parallel()
	var got []uint64
	var stats counters
	const connected = 1 << 40
	d := newDispatcher(&stats, func(ev *event) { got = append(got, eventSequence(ev)) },
		func() { got = append(got, connected) })
	go d.run()
	var want []uint64
	for i := range 5000 {
		seq := uint64(5000 - i) // descending: nothing sorts them
		want = append(want, seq)
		d.push(seqEvent(t, int(seq)))
		if i == 2500 {
			d.mark(markConnected)
			want = append(want, connected)
		}
	}
	d.close()
	require.Equal(t, want, got)
	require.Equal(t, uint64(5000), stats.queued.Load())
	require.Zero(t, stats.overflow.Load())

	d.push(seqEvent(t, 1)) // after close: dropped and counted
	d.mark(markConnected)
	require.Len(t, got, len(want))
	require.Equal(t, uint64(1), stats.overflow.Load())
}

// TestDispatcherConcurrentPush: pushes from several goroutines all arrive.
func TestDispatcherConcurrentPush(t *testing.T) {
	t.Parallel()
	var n int
	var stats counters
	d := newDispatcher(&stats, func(*event) { n++ }, func() {})
	go d.run()
	ev := seqEvent(t, 7)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				d.push(ev)
			}
		})
	}
	wg.Wait()
	d.close()
	require.Equal(t, 8000, n)
}

// TestDispatcherOverflow: past maxInbox queued events, the reader's push
// drops and counts instead of blocking.
func TestDispatcherOverflow(t *testing.T) {
	t.Parallel()
	var stats counters
	d := newDispatcher(&stats, func(*event) {}, func() {}) // not running: nothing drains
	for range maxInbox + 10 {
		d.push(event{})
	}
	require.Equal(t, uint64(maxInbox), stats.queued.Load())
	require.Equal(t, uint64(10), stats.overflow.Load())
}

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
