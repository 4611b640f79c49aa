package switchsim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCalleeModelDraw checks, over 100 000 draws with a fixed seed, that the
// drawn population matches the model's parameters. The seed makes the
// statistical assertion deterministic; the tolerances are several standard
// errors wide so that another seed would pass too.
func TestCalleeModelDraw(t *testing.T) {
	t.Parallel()
	m := CalleeModel{AnswerRate: 0.2, BusyRate: 0.1, RingMean: 8 * time.Second, RingMax: 30 * time.Second, TalkMean: 120 * time.Second}
	require.NoError(t, m.Validate())
	r := rand.New(rand.NewPCG(1, 2))
	const n = 100_000
	var answered, busy, noAnswer int
	var talk, ring time.Duration
	for range n {
		o := m.Draw(r)
		switch o.Cause {
		case CauseNormalClearing:
			require.True(t, o.Answer)
			require.GreaterOrEqual(t, o.Talk, time.Second)
			require.Positive(t, o.Ring)
			require.LessOrEqual(t, o.Ring, m.RingMax)
			answered++
			talk += o.Talk
			ring += o.Ring
		case CauseUserBusy:
			require.False(t, o.Answer)
			require.Zero(t, o.Talk)
			require.GreaterOrEqual(t, o.Ring, 500*time.Millisecond)
			require.LessOrEqual(t, o.Ring, 2*time.Second)
			busy++
		case CauseNoAnswer:
			require.False(t, o.Answer)
			require.Zero(t, o.Talk)
			require.Equal(t, m.RingMax, o.Ring)
			noAnswer++
		default:
			t.Fatalf("unexpected cause %q", o.Cause)
		}
	}
	require.Equal(t, n, answered+busy+noAnswer)
	// Standard errors: answer rate 0.0013, busy rate 0.0009, mean talk
	// 0.85 s, mean ring 0.03 s.
	require.InDelta(t, 0.2, float64(answered)/n, 0.005, "answer rate")
	require.InDelta(t, 0.1, float64(busy)/n, 0.004, "busy rate")
	meanTalk := talk.Seconds() / float64(answered)
	require.InDelta(t, 120, meanTalk, 3, "mean talk, s")
	meanRing := ring.Seconds() / float64(answered)
	require.InDelta(t, 8, meanRing, 0.2, "mean ring of answered calls, s")
}

// TestCalleeModelDeterministic checks the same seed draws the same callees.
func TestCalleeModelDeterministic(t *testing.T) {
	t.Parallel()
	m := DefaultCalleeModel()
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for range 1000 {
		require.Equal(t, m.Draw(a), m.Draw(b))
	}
}

// TestCalleeModelExtremes checks the edges: everyone answers, nobody does,
// talk clamped to 1 s.
func TestCalleeModelExtremes(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	all := CalleeModel{AnswerRate: 1, RingMean: time.Second, RingMax: time.Second, TalkMean: time.Millisecond}
	require.NoError(t, all.Validate())
	none := CalleeModel{RingMean: time.Second, RingMax: 20 * time.Second, TalkMean: time.Minute}
	require.NoError(t, none.Validate())
	for range 1000 {
		o := all.Draw(r)
		require.True(t, o.Answer)
		require.Equal(t, time.Second, o.Talk, "talk clamped to 1 s")
		require.LessOrEqual(t, o.Ring, time.Second)
		o = none.Draw(r)
		require.Equal(t, CalleeOutcome{Ring: 20 * time.Second, Cause: CauseNoAnswer}, o)
	}
}

// TestCalleeModelValidate checks every invalid field is reported by name.
func TestCalleeModelValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultCalleeModel().Validate())
	cases := map[string]func(*CalleeModel){
		"AnswerRate": func(m *CalleeModel) { m.AnswerRate = 1.5 },
		"BusyRate":   func(m *CalleeModel) { m.BusyRate = -0.1 },
		"RingMax":    func(m *CalleeModel) { m.RingMax = 0 },
		"RingMean":   func(m *CalleeModel) { m.RingMean = time.Minute },
		"TalkMean":   func(m *CalleeModel) { m.TalkMean = 0 },
	}
	for field, mutate := range cases {
		m := DefaultCalleeModel()
		mutate(&m)
		err := m.Validate()
		require.Error(t, err, field)
		require.Contains(t, err.Error(), field)
	}
	nan := DefaultCalleeModel()
	nan.AnswerRate = math.NaN()
	require.ErrorContains(t, nan.Validate(), "AnswerRate")
	sum := DefaultCalleeModel()
	sum.AnswerRate, sum.BusyRate = 0.7, 0.4
	require.ErrorContains(t, sum.Validate(), "BusyRate")
}

// TestSimDrawsCallees: with a callee model, numbers without a named
// scenario behave as drawn from it; named scenarios are unchanged.
func TestSimDrawsCallees(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		model  CalleeModel
		number string
		result string
		cause  string
	}{
		{CalleeModel{AnswerRate: 1, RingMean: 2 * time.Second, RingMax: 10 * time.Second, TalkMean: 5 * time.Second},
			"5550002000", "+OK", "NORMAL_CLEARING"},
		{CalleeModel{BusyRate: 1, RingMean: time.Second, RingMax: 10 * time.Second, TalkMean: time.Second},
			"5550002000", "-ERR USER_BUSY", "USER_BUSY"},
		{CalleeModel{RingMean: time.Second, RingMax: 10 * time.Second, TalkMean: time.Second},
			"5550002000", "-ERR NO_ANSWER", "NO_ANSWER"},
		{CalleeModel{AnswerRate: 1, RingMean: time.Second, RingMax: 10 * time.Second, TalkMean: time.Second},
			"5550001003", "-ERR USER_BUSY", "USER_BUSY"}, // the busy scenario wins
	} {
		s, clock := manualSim(t, Config{Callees: &tc.model, CalleeSeed: 7})
		c := dial(t, s, "ClueCon")
		c.command(allChannelEvents)
		uuid := newUUID()
		job := c.originate(uuid, "loopback/"+tc.number+"/callgate-test")
		clock.Advance(10 * time.Minute)
		var result string
		evs := c.collectUntil(uuid, func(f wireFrame) bool {
			if isJob(job)(f) {
				result = strings.TrimSpace(f.eventBody())
			}
			return isEvent("CHANNEL_DESTROY", uuid)(f)
		})
		if result == "" {
			result = strings.TrimSpace(c.waitEvent(isJob(job)).eventBody())
		}
		require.True(t, strings.HasPrefix(result, tc.result), "%s: result %q", tc.number, result)
		hc := evs[len(evs)-2]
		require.Equal(t, tc.cause, hc.field("Hangup-Cause"), tc.number)
	}
	_, err := func() (*Sim, error) {
		s := New(Config{Callees: &CalleeModel{AnswerRate: 2}})
		return s, s.Listen("127.0.0.1:0")
	}()
	require.Error(t, err, "a bad model is a configuration error")
}
