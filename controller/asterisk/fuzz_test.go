package asterisk

import (
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
)

// FuzzDecodeEvent: decoding and dispatching any frame never panics. The
// corpus under testdata/fuzz is the fixtures' WebSocket frames.
func FuzzDecodeEvent(f *testing.F) {
	for _, fr := range wsFrames(f, "03_answered_dtmf1_record") {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(data)
		if err != nil {
			return
		}
		_ = ev.channelID()
		_ = ev.at()
		s := benchSwitch(t)
		s.calls.add(controller.CallID(ev.channelID()), s.log, 0, false)
		s.handle(&inboxItem{ev: ev})
		_ = failureCause(ev.DialStatus, ev.Cause, ev.Channel.State == "Up")
	})
}

type nopSink struct{ n int }

func (s *nopSink) HandleChannelEvent(controller.ChannelEvent) { s.n++ }
func (s *nopSink) SwitchConnected(string)                     {}

func benchSwitch(tb testing.TB) *Switch {
	s, err := New(Config{Name: "b", URL: "http://127.0.0.1:1/ari", User: "u", Password: "p", App: "callgate",
		DialTemplate: "Local/{number}@cgtest", RequestTimeout: time.Millisecond}, &nopSink{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkEventIntake: decode, filter and dispatch of real fixture frames
// (a whole answered call with DTMF, recording and hangup) per frame.
func BenchmarkEventIntake(b *testing.B) {
	frames := wsFrames(b, "03_answered_dtmf1_record")
	id := controller.CallID("cg03-f8a2357f-3af9-4e84-92bf-720df4601154")
	s := benchSwitch(b)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		s.calls.add(id, s.log, 0, false)
		for _, fr := range frames {
			ev, err := decodeEvent(fr)
			if err != nil {
				b.Fatal(err)
			}
			if s.wanted(&ev) {
				s.handle(&inboxItem{ev: ev})
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}
