package freeswitch

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/percipia/eslgo"
	"github.com/stretchr/testify/require"
)

func queued(s *Switch) int {
	s.disp.mu.Lock()
	defer s.disp.mu.Unlock()
	return len(s.disp.inbox)
}

// countSink counts deliveries; the dispatcher calls it from one goroutine.
type countSink struct{ n int }

func (c *countSink) HandleChannelEvent(controller.ChannelEvent) { c.n++ }
func (c *countSink) SwitchConnected(string)                     {}

// benchBodies builds n distinct event-plain bodies from fixture 03's -a leg
// channel events (no DESTROY, which would untrack the call), spread over
// calls channels with increasing Event-Sequence.
func benchBodies(b *testing.B, n, calls int) (bodies [][]byte, ids []string) {
	var templates [][]byte
	for _, body := range eventBodies(b, "03-answer-consent-press1-record") {
		ev, err := decodePlainEvent(body)
		require.NoError(b, err)
		name := header(ev.Headers, hEventName)
		if _, ok := channelKinds[name]; ok && name != "CHANNEL_DESTROY" &&
			header(ev.Headers, hUniqueID) == "50b976a2-5e58-4f1a-bbe1-07766e35f9f6" {
			templates = append(templates, body)
		}
	}
	require.NotEmpty(b, templates)
	for i := range calls {
		ids = append(ids, fmt.Sprintf("50b976a2-5e58-4f1a-bbe1-%012d", i))
	}
	uid := regexp.MustCompile(`(?m)^Unique-ID: .*$`)
	seq := regexp.MustCompile(`(?m)^Event-Sequence: .*$`)
	for i := range n {
		body := templates[i%len(templates)]
		body = uid.ReplaceAll(body, []byte("Unique-ID: "+ids[i%calls]))
		body = seq.ReplaceAll(body, fmt.Appendf(nil, "Event-Sequence: %d", 1000+i))
		bodies = append(bodies, bytes.Clone(body))
	}
	return bodies, ids
}

// BenchmarkEventDecodeDispatch measures events per second through the path
// eslgo's listener feeds: listener filter → queue → reorder heap → mapping →
// tracker → sink, on the dispatcher goroutine. Run with -cpu 1 for one core.
//
//   - dispatch: events already parsed (eslgo parses them on its own
//     goroutine before calling the listener).
//   - decode+dispatch: also the event-plain parse eslgo does
//     (net/textproto), on the same core.
//   - decode: the parse alone, to show where the time goes.
//   - eslgo-goroutines: dispatch with a goroutine per event, as eslgo
//     calls listeners.
func BenchmarkEventDecodeDispatch(b *testing.B) {
	const ring, calls = 4096, 64
	bodies, ids := benchBodies(b, ring, calls)
	parsed := make([]*eslgo.Event, ring)
	for i, body := range bodies {
		ev, err := decodePlainEvent(body)
		require.NoError(b, err)
		parsed[i] = ev
	}

	run := func(b *testing.B, push func(s *Switch, i int), settle func()) {
		sink := &countSink{}
		s, err := New(Config{Name: "fs1", Address: "127.0.0.1:1", Password: "x", DialTemplate: "loopback/{number}"}, sink)
		require.NoError(b, err)
		for _, id := range ids {
			s.Track(controller.CallID(id))
		}
		go s.disp.run()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if i%1024 == 0 {
				// Back-pressure: measure the dispatcher, not the queue
				// filling up (eslgo's own parse limits the real producer).
				for queued(s) > 8192 {
					runtime.Gosched()
				}
			}
			if i > 0 && i%ring == 0 {
				settle()
				s.disp.mark(markReset) // the ring restarts its sequences, as after a reconnect
			}
			push(s, i%ring)
		}
		settle()
		s.disp.close() // delivers everything still queued or held
		elapsed := time.Since(start)
		b.StopTimer()
		require.Zero(b, s.Stats().EventsOverflow)
		require.Equal(b, b.N, sink.n)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	}

	b.Run("dispatch", func(b *testing.B) {
		run(b, func(s *Switch, i int) { s.onEvent(parsed[i]) }, func() {})
	})
	b.Run("decode+dispatch", func(b *testing.B) {
		run(b, func(s *Switch, i int) {
			ev, err := decodePlainEvent(bodies[i])
			if err != nil {
				b.Fatal(err)
			}
			s.onEvent(ev)
		}, func() {})
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := range b.N {
			if _, err := decodePlainEvent(bodies[i%ring]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("eslgo-goroutines", func(b *testing.B) {
		var wg sync.WaitGroup
		run(b, func(s *Switch, i int) {
			wg.Go(func() { s.onEvent(parsed[i]) })
		}, wg.Wait)
	})
}
