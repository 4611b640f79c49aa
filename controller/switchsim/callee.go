package switchsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Hangup causes a CalleeOutcome reports.
const (
	CauseNormalClearing = "NORMAL_CLEARING"
	CauseNoAnswer       = "NO_ANSWER"
	CauseUserBusy       = "USER_BUSY"
)

// ringSigma is the shape (σ of the logarithm) of the lognormal ring time of
// answered calls: with it, half the callees answer between about 0.7× and
// 1.3× the mean and a few take two or three times as long.
const ringSigma = 0.5

// Busy lines report USER_BUSY after a short ring drawn uniformly between
// these two durations.
const (
	busyRingMin = 500 * time.Millisecond
	busyRingMax = 2 * time.Second
)

// minTalk is the shortest talk time Draw returns for an answered call.
const minTalk = time.Second

// CalleeModel draws how a callee reacts to a call, statistically: unlike a
// Scenario (fixed behaviour chosen by the number), it describes a
// population of callees for load tests and pacing simulations. It does
// not change how the simulator's own calls behave.
type CalleeModel struct {
	// AnswerRate is the probability that a live person answers, in [0, 1].
	AnswerRate float64
	// BusyRate is the probability that the line is busy (USER_BUSY after a
	// 0.5–2 s ring), in [0, 1]; AnswerRate+BusyRate ≤ 1. Every other call
	// rings for RingMax and ends NO_ANSWER.
	BusyRate float64
	// RingMean is the mean time from dialling to the answer of answered
	// calls (lognormal, clamped to RingMax); positive, at most RingMax.
	RingMean time.Duration
	// RingMax is the no-answer timeout: how long an unanswered call rings.
	// Positive.
	RingMax time.Duration
	// TalkMean is the mean talk time of answered calls (exponential,
	// clamped to at least 1 s); positive.
	TalkMean time.Duration
}

// DefaultCalleeModel is a typical outbound list: 20 % of calls answered
// after 8 s on average, 10 % busy, the rest unanswered after 30 s, and
// 120 s of talk on average.
func DefaultCalleeModel() CalleeModel {
	return CalleeModel{AnswerRate: 0.2, BusyRate: 0.1, RingMean: 8 * time.Second,
		RingMax: 30 * time.Second, TalkMean: 120 * time.Second}
}

// CalleeOutcome is one drawn reaction.
type CalleeOutcome struct {
	// Answer is whether a live person answers.
	Answer bool
	// Ring is the time from dialling to the answer, or to the failure
	// (busy or no answer).
	Ring time.Duration
	// Talk is how long the callee stays once answered; 0 if not answered.
	Talk time.Duration
	// Cause is the hangup cause: CauseNormalClearing when answered,
	// CauseUserBusy or CauseNoAnswer otherwise.
	Cause string
}

// Validate returns an error naming the first invalid field, or nil.
func (m CalleeModel) Validate() error {
	rate := func(name string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return fmt.Errorf("switchsim: CalleeModel.%s %v not in [0, 1]", name, v)
		}
		return nil
	}
	if err := rate("AnswerRate", m.AnswerRate); err != nil {
		return err
	}
	if err := rate("BusyRate", m.BusyRate); err != nil {
		return err
	}
	if m.AnswerRate+m.BusyRate > 1 {
		return fmt.Errorf("switchsim: CalleeModel.BusyRate %v plus AnswerRate %v exceeds 1", m.BusyRate, m.AnswerRate)
	}
	if m.RingMax <= 0 {
		return fmt.Errorf("switchsim: CalleeModel.RingMax %v must be positive", m.RingMax)
	}
	if m.RingMean <= 0 || m.RingMean > m.RingMax {
		return fmt.Errorf("switchsim: CalleeModel.RingMean %v must be positive and at most RingMax %v", m.RingMean, m.RingMax)
	}
	if m.TalkMean <= 0 {
		return errors.New("switchsim: CalleeModel.TalkMean must be positive")
	}
	return nil
}

// Draw returns one callee's reaction, using r only (same sequence of r,
// same outcomes). It assumes a valid model (Validate); on an invalid one
// it still returns an outcome with durations in [0, RingMax] and talk
// ≥ 1 s when answered, never panics.
func (m CalleeModel) Draw(r *rand.Rand) CalleeOutcome {
	u := r.Float64()
	switch {
	case u < m.AnswerRate:
		return CalleeOutcome{Answer: true, Ring: m.drawRing(r), Talk: m.drawTalk(r), Cause: CauseNormalClearing}
	case u < m.AnswerRate+m.BusyRate:
		ring := busyRingMin + time.Duration(r.Float64()*float64(busyRingMax-busyRingMin))
		return CalleeOutcome{Ring: min(ring, max(m.RingMax, 0)), Cause: CauseUserBusy}
	default:
		return CalleeOutcome{Ring: max(m.RingMax, 0), Cause: CauseNoAnswer}
	}
}

// drawRing draws a lognormal ring time with mean RingMean, clamped to
// [0, RingMax].
func (m CalleeModel) drawRing(r *rand.Rand) time.Duration {
	if m.RingMean <= 0 {
		return 0
	}
	mu := math.Log(float64(m.RingMean)) - ringSigma*ringSigma/2
	d := math.Exp(mu + ringSigma*r.NormFloat64())
	return time.Duration(min(d, float64(max(m.RingMax, 0))))
}

// drawTalk draws an exponential talk time with mean TalkMean, at least
// minTalk.
func (m CalleeModel) drawTalk(r *rand.Rand) time.Duration {
	d := r.ExpFloat64() * float64(m.TalkMean)
	if math.IsNaN(d) || d < float64(minTalk) {
		return minTalk
	}
	return time.Duration(min(d, float64(math.MaxInt64/2)))
}

// drawCallee draws a callee from the configured model as a scenario: it
// rings, then answers and hangs up after the talk time, or hangs up busy,
// or rings until the originate times out. Caller holds s.mu.
func (s *Sim) drawCallee() Scenario {
	if s.callees == nil {
		s.callees = rand.New(rand.NewPCG(s.cfg.CalleeSeed, s.cfg.CalleeSeed^0x9e3779b97f4a7c15))
	}
	o := s.cfg.Callees.Draw(s.callees)
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	sc := Scenario{Name: "callee-model"}
	switch {
	case o.Answer:
		sc.Steps = []Step{{"ring_ready", ""}, {"sleep", ms(o.Ring)}, {"answer", ""}, {"sleep", ms(o.Talk)}, {"hangup", ""}}
	case o.Cause == CauseUserBusy:
		sc.Steps = []Step{{"ring_ready", ""}, {"sleep", ms(o.Ring)}, {"hangup", CauseUserBusy}}
	default:
		sc.Steps = []Step{{"ring_ready", ""}, {"sleep", ms(o.Ring)}, {"hangup", CauseNoAnswer}}
	}
	return sc
}
