package pacing

import (
	"math"
	"testing"
	"time"
)

// fuzzReader hands out the fuzzer's bytes, zeros once they run out.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// count returns a small signed count, negatives included.
func (r *fuzzReader) count() int { return int(int8(r.byte())) }

// duration returns a signed duration from milliseconds to days.
func (r *fuzzReader) duration() time.Duration {
	v := time.Duration(int8(r.byte()))
	scale := []time.Duration{time.Millisecond, time.Second, 10 * time.Second, time.Minute, time.Hour, 24 * time.Hour}
	return v * scale[int(r.byte())%len(scale)]
}

// FuzzPacer feeds arbitrary outcomes and states to a pacer: ToDial stays
// within [0, MaxDialLevel × AgentsLoggedIn], progressive pacing within
// the idle agents without a call, the snapshot finite, and nothing panics.
func FuzzPacer(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1, 3, 0, 1, 0, 8, 1, 120, 1, 10, 1, 0, 0, 1, 50, 3, 0, 40, 0, 0})
	f.Add([]byte{0x81, 2, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0xff, 0x80, 0x7f, 3, 200, 9})
	f.Add([]byte{0x41, 0, 0, 1, 1, 30, 2, 5, 3, 1, 4, 0, 0, 1, 100, 0, 0, 0, 0, 0, 120, 1, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		head := r.byte()
		cfg := Config{Mode: Progressive, MaxDialLevel: float64(1 + head>>4%8), MinHistory: 1 + int(head>>1%4),
			Window: 10 + int(r.byte()), Memory: 10 + int(r.byte())}
		if head&1 == 1 {
			cfg.Mode = Predictive
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := day0
		for len(r.b) > 0 {
			now = now.Add(r.duration())
			if r.byte()%2 == 0 {
				flags := r.byte()
				p.Observe(Outcome{At: now, Answered: flags&1 == 1, Abandoned: flags&2 == 2,
					Ring: r.duration(), Talk: r.duration(), Wrap: r.duration()})
				continue
			}
			s := State{AgentsLoggedIn: r.count(), AgentsIdle: r.count(), AgentsWrapping: r.count(),
				AgentsPaused: r.count() / 8, CallsRinging: r.count(), CallsQueued: r.count() / 8}
			for range min(max(s.CallsRinging, 0), int(r.byte()%64)) {
				s.RingingSince = append(s.RingingSince, now.Add(-r.duration()))
			}
			n := p.ToDial(now, s)
			bound := int(math.Floor(cfg.MaxDialLevel * float64(max(s.AgentsLoggedIn, 0))))
			if n < 0 || n > bound {
				t.Fatalf("ToDial = %d, want in [0, %d] for %+v", n, bound, s)
			}
			if cfg.Mode == Progressive {
				idle := min(max(s.AgentsIdle, 0), max(s.AgentsLoggedIn, 0)-min(max(s.AgentsPaused, 0), max(s.AgentsLoggedIn, 0)))
				if free := max(0, idle-max(s.CallsRinging, 0)-max(s.CallsQueued, 0)); n > free {
					t.Fatalf("progressive ToDial = %d for %d idle agents without a call, %+v", n, free, s)
				}
			}
			snap := p.Snapshot()
			for _, v := range []float64{snap.AnswerRate, snap.AvgRingSeconds, snap.AvgFailSeconds, snap.AvgTalkSeconds,
				snap.AvgWrapSeconds, snap.AbandonRate, snap.AbandonRate30d, snap.Safety, snap.DialLevel} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < -10 {
					t.Fatalf("snapshot not finite: %+v", snap)
				}
			}
		}
	})
}
