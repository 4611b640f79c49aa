package freeswitch

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

func queued(s *Switch) int { return s.disp.inbox.Len() }

// countSink counts deliveries; the dispatcher calls it from one goroutine.
type countSink struct{ n int }

func (c *countSink) HandleChannelEvent(controller.ChannelEvent) { c.n++ }
func (c *countSink) SwitchConnected(string)                     {}

// benchStream frames n events, as FreeSWITCH writes them on the event
// connection, from fixture 03's -a leg channel events (CHANNEL_CREATE,
// CHANNEL_ANSWER, DTMF, CHANNEL_EXECUTE_COMPLETE, RECORD_*, CHANNEL_HANGUP,
// CHANNEL_HANGUP_COMPLETE; 1.5 to 2.6 KB each; no DESTROY, which would
// untrack the call), spread over calls channels with increasing
// Event-Sequence. ends[i] is where frame i ends in stream.
func benchStream(b *testing.B, n, calls int) (stream []byte, ends []int, ids []string) {
	var templates [][]byte
	for _, body := range eventBodies(b, "03-answer-consent-press1-record") {
		ev := parseEvent(b, body)
		name := ev.get(hEventName)
		if _, ok := channelKinds[name]; ok && name != "CHANNEL_DESTROY" &&
			ev.get(hUniqueID) == "50b976a2-5e58-4f1a-bbe1-07766e35f9f6" {
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
		stream = fmt.Appendf(stream, "Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(body), body)
		ends = append(ends, len(stream))
	}
	return stream, ends, ids
}

// ringReader yields a stream of frames over and over, then io.EOF after
// left bytes.
type ringReader struct {
	data      []byte
	off, left int
}

func (r *ringReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.left)], r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	r.left -= n
	return n, nil
}

// framesReader returns a reader of exactly n frames of the ring.
func framesReader(stream []byte, ends []int, n int) *ringReader {
	size := n / len(ends) * len(stream)
	if k := n % len(ends); k > 0 {
		size += ends[k-1]
	}
	return &ringReader{data: stream, left: size}
}

// BenchmarkEventDecodeDispatch measures events per second on the event
// connection's path. Run with -cpu 1 for one core.
//
//   - decode+dispatch: raw frames from a reader (as from the socket) →
//     frameReader → eventParser → filter → queue → dispatcher goroutine →
//     mapping → tracker → sink. The product target is ≥ 100 000 events/s.
//   - decode: frameReader and eventParser alone.
//   - dispatch: events already parsed, from the queue to the sink.
func BenchmarkEventDecodeDispatch(b *testing.B) {
	const ring, calls = 4096, 64
	stream, ends, ids := benchStream(b, ring, calls)

	newSwitch := func(b *testing.B) (*Switch, *countSink) {
		sink := &countSink{}
		s, err := New(Config{Name: "fs1", Address: "127.0.0.1:1", Password: "x", DialTemplate: "loopback/{number}"}, sink)
		require.NoError(b, err)
		for _, id := range ids {
			s.Track(controller.CallID(id))
		}
		return s, sink
	}
	report := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	}

	b.Run("decode+dispatch", func(b *testing.B) {
		s, sink := newSwitch(b)
		r := framesReader(stream, ends, b.N)
		go s.disp.run()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		err := s.readEvents(newFrameReader(r))
		s.disp.close() // delivers everything still queued
		report(b, start)
		b.StopTimer()
		require.ErrorIs(b, err, io.EOF)
		require.Zero(b, s.Stats().EventsOverflow)
		require.Equal(b, b.N, sink.n)
	})
	b.Run("decode", func(b *testing.B) {
		fr := newFrameReader(framesReader(stream, ends, b.N))
		var p eventParser
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			f, err := fr.next()
			if err != nil {
				b.Fatal(err)
			}
			if err := p.parse(f.body); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run("dispatch", func(b *testing.B) {
		s, sink := newSwitch(b)
		parsed := make([]event, ring)
		var p eventParser
		for i := range ring {
			lo := 0
			if i > 0 {
				lo = ends[i-1]
			}
			f, err := newFrameReader(&ringReader{data: stream[lo:ends[i]], left: ends[i] - lo}).next()
			require.NoError(b, err)
			require.NoError(b, p.parse(f.body))
			parsed[i] = p.event()
		}
		go s.disp.run()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if i%1024 == 0 {
				// Back-pressure: measure the dispatcher, not the queue
				// filling up (the reader's parse limits the real producer).
				for queued(s) > 8192 {
					runtime.Gosched()
				}
			}
			s.disp.push(parsed[i%ring])
		}
		s.disp.close()
		report(b, start)
		b.StopTimer()
		require.Equal(b, b.N, sink.n)
	})
}
