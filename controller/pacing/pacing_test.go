package pacing

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var day0 = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

// setup returns a pacer in mode, with default settings.
func setup(t *testing.T, mode Mode) *Pacer {
	t.Helper()
	p, err := New(Config{Mode: mode})
	require.NoError(t, err)
	return p
}

// feed reports n attempts ending at at, in a fixed mix: 2 in 10 answered
// after 8 s (120 s talk, 10 s wrap-up), 1 busy after 1 s, 7 unanswered
// after 30 s; every abandonEvery-th answered call is abandoned (0: none).
func feed(p *Pacer, at time.Time, n, abandonEvery int) {
	answered := 0
	for i := range n {
		switch i % 10 {
		case 0, 5:
			answered++
			o := Outcome{At: at, Answered: true, Ring: 8 * time.Second, Talk: 120 * time.Second, Wrap: 10 * time.Second}
			if abandonEvery > 0 && answered%abandonEvery == 0 {
				o = Outcome{At: at, Answered: true, Abandoned: true, Ring: 8 * time.Second}
			}
			p.Observe(o)
		case 3:
			p.Observe(Outcome{At: at, Ring: time.Second})
		default:
			p.Observe(Outcome{At: at, Ring: 30 * time.Second})
		}
	}
}

// busyFloor is a state of 50 agents all busy but for a few.
func busyFloor(idle, wrapping, ringing int) State {
	return State{AgentsLoggedIn: 50, AgentsIdle: idle, AgentsWrapping: wrapping, CallsRinging: ringing}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]Config{
		"Mode":          {Mode: "preview"},
		"TargetAbandon": {Mode: Predictive, TargetAbandon: -0.01},
		"MaxDialLevel":  {Mode: Predictive, MaxDialLevel: 0.5},
		"Window":        {Mode: Predictive, Window: 5},
		"Memory":        {Mode: Predictive, Memory: 2_000_000},
		"MinHistory":    {Mode: Predictive, MinHistory: -1},
	}
	for field, cfg := range cases {
		_, err := New(cfg)
		require.Error(t, err, field)
		require.Contains(t, err.Error(), "Config."+field)
	}
	for _, v := range []float64{math.NaN(), 0.6, math.Inf(1)} {
		_, err := New(Config{Mode: Progressive, TargetAbandon: v})
		require.ErrorContains(t, err, "Config.TargetAbandon")
		_, err = New(Config{Mode: Progressive, MaxDialLevel: v * 1000})
		require.ErrorContains(t, err, "Config.MaxDialLevel")
	}
	_, err := New(Config{})
	require.ErrorContains(t, err, "Config.Mode")

	p := setup(t, Predictive)
	s := p.Snapshot()
	require.Equal(t, DefaultTargetAbandon, s.TargetAbandon, "zero means the default")
	require.Equal(t, Predictive, s.Mode)
}

// TestProgressiveNeverExceedsIdle checks progressive pacing places exactly
// one call for each idle agent without one, whatever the history.
func TestProgressiveNeverExceedsIdle(t *testing.T) {
	t.Parallel()
	p := setup(t, Progressive)
	feed(p, day0, 2000, 0)
	for idle := 0; idle <= 12; idle++ {
		for ringing := 0; ringing <= 14; ringing++ {
			for queued := 0; queued <= 2; queued++ {
				s := State{AgentsLoggedIn: 12, AgentsIdle: idle, CallsRinging: ringing, CallsQueued: queued}
				require.Equal(t, max(0, idle-ringing-queued), p.ToDial(day0, s), "%+v", s)
			}
		}
	}
	require.False(t, p.Snapshot().Predicting)
	require.Equal(t, 2, p.ToDial(day0, State{AgentsLoggedIn: 12, AgentsIdle: 5, AgentsWrapping: 2, CallsRinging: 3}))
	require.InDelta(t, 10.0/12, p.Snapshot().DialLevel, 1e-9, "5 talking and 3+2 ringing for 12 agents")
}

// TestPredictiveWithoutHistoryIsProgressive checks a new predictive pacer
// dials like a progressive one until MinHistory calls were connected.
func TestPredictiveWithoutHistoryIsProgressive(t *testing.T) {
	t.Parallel()
	p := setup(t, Predictive)
	s := busyFloor(5, 3, 2)
	require.Equal(t, 3, p.ToDial(day0, s))
	require.Equal(t, 0, p.ToDial(day0, busyFloor(0, 10, 0)), "no idle agent, no history: no call")
	require.False(t, p.Snapshot().Predicting)

	feed(p, day0, 10*(DefaultMinHistory-1)/2, 0) // 19 connected calls
	require.Equal(t, 3, p.ToDial(day0, s))
	feed(p, day0, 10, 0)
	require.Greater(t, p.ToDial(day0, s), 3, "predicting once 20 calls were connected")
	require.True(t, p.Snapshot().Predicting)
}

// TestPredictiveDialsAhead checks predictive pacing dials for agents about
// to free up, scaled by the answer rate.
func TestPredictiveDialsAhead(t *testing.T) {
	t.Parallel()
	p := setup(t, Predictive)
	feed(p, day0, 1000, 0)
	s := p.Snapshot()
	require.InDelta(t, 0.2, s.AnswerRate, 1e-9)
	require.InDelta(t, 120, s.AvgTalkSeconds, 1e-9)
	require.InDelta(t, 8, s.AvgRingSeconds, 1e-9)

	require.Positive(t, p.ToDial(day0, busyFloor(0, 10, 0)), "ten agents wrapping up: dial before they are free")
	n := p.ToDial(day0, busyFloor(5, 0, 0))
	require.Greater(t, n, 5, "five idle agents at a 20 %% answer rate need more than five calls")
	require.LessOrEqual(t, n, 25, "but not more than five per idle agent")
	require.Greater(t, p.Snapshot().DialLevel, 1.0)
	require.Less(t, p.ToDial(day0, busyFloor(5, 0, 30)), n, "calls already ringing count")
	require.Equal(t, 0, p.ToDial(day0, busyFloor(0, 0, 40)), "everyone talking, many calls ringing")
}

// TestRingingAgeMatters checks young ringing calls, still likely to be
// answered, hold back more new calls than old ones, likely to fail.
func TestRingingAgeMatters(t *testing.T) {
	t.Parallel()
	p := setup(t, Predictive)
	feed(p, day0, 1000, 0)
	ring := func(age time.Duration) State {
		s := busyFloor(6, 0, 10)
		for range 10 {
			s.RingingSince = append(s.RingingSince, day0.Add(-age))
		}
		return s
	}
	young, old := p.ToDial(day0, ring(time.Second)), p.ToDial(day0, ring(25*time.Second))
	require.Less(t, young, old)
	require.Equal(t, p.ToDial(day0, busyFloor(6, 0, 0)), p.ToDial(day0, ring(40*time.Second)),
		"calls ringing longer than any answered call will not be answered")
}

// TestRisingAbandonLowersDialLevel checks the feedback: abandons make the
// pacer dial fewer calls for the same state, calls that found an agent
// slowly more.
func TestRisingAbandonLowersDialLevel(t *testing.T) {
	t.Parallel()
	p := setup(t, Predictive)
	feed(p, day0, 1000, 0)
	s := busyFloor(4, 6, 10)
	before := p.ToDial(day0, s)
	levelBefore, safetyBefore := p.Snapshot().DialLevel, p.Snapshot().Safety

	feed(p, day0, 200, 10) // 10 % of 40 answered calls abandoned
	after := p.ToDial(day0, s)
	require.Less(t, after, before)
	require.Less(t, p.Snapshot().DialLevel, levelBefore)
	require.Greater(t, p.Snapshot().Safety, safetyBefore)
	require.InDelta(t, 4.0/240, p.Snapshot().AbandonRate, 1e-9, "window: 4 abandoned of 240 answered")

	// Up sharply, down slowly: an abandon adds what 30+ calls that found
	// an agent take off.
	connected := Outcome{At: day0, Answered: true, Ring: 8 * time.Second, Talk: time.Minute}
	s0 := p.Snapshot().Safety
	p.Observe(connected)
	s1 := p.Snapshot().Safety
	p.Observe(Outcome{At: day0, Answered: true, Abandoned: true, Ring: 8 * time.Second})
	s2 := p.Snapshot().Safety
	require.Less(t, s1, s0, "a call that found an agent lowers the margin")
	require.Greater(t, s2-s1, 30*(s0-s1))
	feed(p, day0, 3000, 0)
	require.Greater(t, p.ToDial(day0, s), after, "600 calls that found an agent later")
}

// TestLongRunRateOverTargetStopsPredicting checks that at or over the
// target over 30 days the pacer paces progressively, and that days older
// than 30 no longer count.
func TestLongRunRateOverTargetStopsPredicting(t *testing.T) {
	t.Parallel()
	p := setup(t, Predictive)
	feed(p, day0, 5000, 20) // 5 % of 1000 answered calls abandoned
	s := busyFloor(5, 3, 2)
	require.Equal(t, 3, p.ToDial(day0, s), "progressive")
	snap := p.Snapshot()
	require.False(t, snap.Predicting)
	require.InDelta(t, 0.05, snap.AbandonRate30d, 1e-9)

	later := day0.Add(31 * 24 * time.Hour)
	require.Greater(t, p.ToDial(later, s), 3, "the bad days are over 30 days old")
	require.True(t, p.Snapshot().Predicting)
	require.Zero(t, p.Snapshot().AbandonRate30d)
}

// TestNoAgentsNoCalls checks a floor without available agents dials
// nothing, and that nonsense counts are clamped.
func TestNoAgentsNoCalls(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{Progressive, Predictive} {
		p := setup(t, mode)
		feed(p, day0, 1000, 0)
		require.Zero(t, p.ToDial(day0, State{}), mode)
		require.Zero(t, p.ToDial(day0, State{AgentsLoggedIn: 10, AgentsIdle: 10, AgentsPaused: 10}), mode)
		require.Zero(t, p.ToDial(day0, State{AgentsLoggedIn: -3, AgentsIdle: 5}), mode)
		require.Zero(t, p.Snapshot().DialLevel)
		n := p.ToDial(day0, State{AgentsLoggedIn: 2, AgentsIdle: 50, CallsRinging: -4, CallsQueued: -1})
		require.GreaterOrEqual(t, n, 2, "idle capped at logged in")
		require.LessOrEqual(t, n, 2*DefaultMaxDialLevel)
	}
}

// TestMaxDialLevelCaps checks calls in progress never exceed MaxDialLevel
// per available agent, even at a tiny answer rate.
func TestMaxDialLevelCaps(t *testing.T) {
	t.Parallel()
	p, err := New(Config{Mode: Predictive, MaxDialLevel: 2})
	require.NoError(t, err)
	for range 100 {
		p.Observe(Outcome{At: day0, Answered: true, Ring: 5 * time.Second, Talk: time.Minute})
		for range 99 {
			p.Observe(Outcome{At: day0, Ring: 30 * time.Second})
		}
	}
	require.Equal(t, 20, p.ToDial(day0, State{AgentsLoggedIn: 10, AgentsIdle: 10}))
	require.Equal(t, 5, p.ToDial(day0, State{AgentsLoggedIn: 10, AgentsIdle: 5, CallsRinging: 10}))
	require.InDelta(t, 2, p.Snapshot().DialLevel, 1e-9)
}

// TestPacerDeterministic checks equal inputs give equal decisions.
func TestPacerDeterministic(t *testing.T) {
	t.Parallel()
	a, b := setup(t, Predictive), setup(t, Predictive)
	for i := range 50 {
		at := day0.Add(time.Duration(i) * time.Minute)
		feed(a, at, 37, 7)
		feed(b, at, 37, 7)
		s := busyFloor(i%7, i%5, i%30)
		require.Equal(t, a.ToDial(at, s), b.ToDial(at, s))
	}
	require.Equal(t, a.Snapshot(), b.Snapshot())
}
