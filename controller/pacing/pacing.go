// Package pacing decides how many calls a campaign places now, for a pool
// of agents: progressively (never more calls in progress than idle agents,
// so no call is ever abandoned) or predictively (dialling ahead of agents
// so they stay busy, while the abandon rate stays under a target).
//
// A call is abandoned when a live person answered and no agent was free
// within the grace period (2 s in the US): it hears an identification
// message and is hung up. The abandon rate is abandoned ÷ live-answered
// calls.
//
// The package is deterministic and has no clock of its own: time comes in
// as arguments, so the same observations and states give the same
// decisions. Simulate runs a dialer, its agents and its callees in virtual
// time to measure a pacing mode.
package pacing

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Mode is a pacing mode.
type Mode string

// The pacing modes.
const (
	// Progressive places one call per idle agent that has none in progress.
	Progressive Mode = "progressive"
	// Predictive dials ahead of agents expected to free up, within the
	// abandon-rate target.
	Predictive Mode = "predictive"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTargetAbandon = 0.03
	DefaultMaxDialLevel  = 5
	DefaultWindow        = 500
	DefaultMemory        = 1000
	DefaultMinHistory    = 20
)

// Config configures a Pacer. Zero numeric fields take the defaults above.
type Config struct {
	// Mode is Progressive or Predictive.
	Mode Mode
	// TargetAbandon is the highest abandon rate allowed (abandoned ÷
	// live-answered calls), in (0, 0.5]. Predictive pacing aims a little
	// under it (85 %) and falls back to progressive pacing while the rate
	// over the last 30 days is at or over it. 0 means 0.03.
	TargetAbandon float64
	// MaxDialLevel caps calls in progress (ringing, waiting for an agent or
	// talking to one) per available (logged-in, unpaused) agent, in
	// [1, 100]. 0 means 5.
	MaxDialLevel float64
	// Window is the number of most recent answered calls whose abandon rate
	// steers predictive pacing, in [10, 1 000 000]. 0 means 500.
	Window int
	// Memory is how many recent outcomes the moving averages (answer rate,
	// ring, talk and wrap-up times) weigh, in [10, 1 000 000]. 0 means 1000.
	Memory int
	// MinHistory is how many calls must have been connected to an agent
	// (and their talk and wrap-up times observed) before predictive pacing
	// starts; until then it paces progressively. In [1, 1 000 000]. 0 means
	// 20.
	MinHistory int
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.TargetAbandon == 0 {
		c.TargetAbandon = DefaultTargetAbandon
	}
	if c.MaxDialLevel == 0 {
		c.MaxDialLevel = DefaultMaxDialLevel
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.MinHistory == 0 {
		c.MinHistory = DefaultMinHistory
	}
	return c
}

// Validate returns an error naming the first invalid field, or nil. Zero
// numeric fields are valid (they mean the default).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Mode != Progressive && c.Mode != Predictive:
		return fmt.Errorf("pacing: Config.Mode %q is neither %q nor %q", c.Mode, Progressive, Predictive)
	case !(c.TargetAbandon > 0 && c.TargetAbandon <= 0.5):
		return fmt.Errorf("pacing: Config.TargetAbandon %v not in (0, 0.5]", c.TargetAbandon)
	case !(c.MaxDialLevel >= 1 && c.MaxDialLevel <= 100):
		return fmt.Errorf("pacing: Config.MaxDialLevel %v not in [1, 100]", c.MaxDialLevel)
	case c.Window < 10 || c.Window > 1_000_000:
		return fmt.Errorf("pacing: Config.Window %d not in [10, 1000000]", c.Window)
	case c.Memory < 10 || c.Memory > 1_000_000:
		return fmt.Errorf("pacing: Config.Memory %d not in [10, 1000000]", c.Memory)
	case c.MinHistory < 1 || c.MinHistory > 1_000_000:
		return fmt.Errorf("pacing: Config.MinHistory %d not in [1, 1000000]", c.MinHistory)
	}
	return nil
}

// State is what the dialer sees now. Negative counts count as zero, counts
// over 2²⁴ as 2²⁴; paused, idle and wrapping agents beyond the logged-in
// count (in that order) are ignored.
type State struct {
	// AgentsLoggedIn counts every agent of the campaign, in any state.
	AgentsLoggedIn int
	// AgentsIdle counts agents available for a call: not on a call, not
	// in wrap-up, not paused.
	AgentsIdle int
	// AgentsWrapping counts agents in after-call work.
	AgentsWrapping int
	// AgentsPaused counts logged-in agents not taking calls.
	AgentsPaused int
	// CallsRinging counts calls placed and not yet answered or ended.
	CallsRinging int
	// RingingSince optionally lists when ringing calls were placed, in
	// any order (entries beyond CallsRinging are ignored). Predictive
	// pacing weighs each listed call by the chance that a call ringing for
	// that long is still answered; calls not listed count at the average
	// mix of young and old calls.
	RingingSince []time.Time
	// CallsQueued counts answered calls waiting for an agent (within the
	// grace period, not yet abandoned).
	CallsQueued int
}

// Outcome is one ended attempt, reported once.
type Outcome struct {
	// At is when the attempt ended.
	At time.Time
	// Answered is whether a live person answered (connected to an agent or
	// abandoned).
	Answered bool
	// Abandoned is whether the answered call found no agent within the
	// grace period. It implies Answered.
	Abandoned bool
	// Ring is the time from dialling to the answer, or to the failure when
	// not answered.
	Ring time.Duration
	// Talk is the time the callee spent with an agent; 0 if none.
	Talk time.Duration
	// Wrap is the agent's after-call work for this call; 0 if none. Report
	// a connected call once its wrap-up is over.
	Wrap time.Duration
}

// Snapshot is the pacer's inputs and current decision level, for the
// campaign API (GET /v1/campaigns/{id}).
type Snapshot struct {
	Mode Mode `json:"mode"`
	// Predicting is false while predictive pacing waits for history or
	// holds back because the 30-day abandon rate reached the target: it
	// then paces progressively.
	Predicting bool  `json:"predicting"`
	Attempts   int64 `json:"attempts"`
	Answered   int64 `json:"answered"`
	Abandoned  int64 `json:"abandoned"`
	// AnswerRate is the moving live-answer rate of attempts.
	AnswerRate float64 `json:"answer_rate"`
	// AvgRingSeconds is the moving mean time to answer of answered calls.
	AvgRingSeconds float64 `json:"avg_ring_seconds"`
	// AvgFailSeconds is the moving mean ring time of unanswered calls.
	AvgFailSeconds float64 `json:"avg_fail_seconds"`
	AvgTalkSeconds float64 `json:"avg_talk_seconds"`
	AvgWrapSeconds float64 `json:"avg_wrap_seconds"`
	// AbandonRate is over the last Window answered calls.
	AbandonRate float64 `json:"abandon_rate"`
	// AbandonRate30d is over the answered calls of the last 30 days.
	AbandonRate30d float64 `json:"abandon_rate_30d"`
	TargetAbandon  float64 `json:"target_abandon"`
	// Safety is the margin, in standard deviations of the forecast, that
	// predictive pacing keeps between agents expected free and answers
	// expected; the abandon-rate feedback moves it.
	Safety float64 `json:"safety"`
	// DialLevel is calls in progress (after the last decision) per
	// available agent.
	DialLevel float64 `json:"dial_level"`
}

// Pacer decides how many calls to place.
//
// Progressive pacing places one call for each idle agent that has none
// ringing or waiting for it, so an answered call always finds an agent.
//
// Predictive pacing learns from ended attempts the answer rate, the ring
// time distributions of answered and unanswered calls, and the mean talk
// and wrap-up times. At each decision it forecasts the agents free by the
// time a new call would be answered and the answers still to come from
// calls in progress, and dials for the difference divided by the answer
// rate, less a safety margin in standard deviations of that forecast (see
// predict). The margin is a feedback loop on the abandon rate of the last
// Window answered calls: each abandon raises it (up to five times as much
// as that rate nears the target), each call that found an agent lowers it
// a little: it aims at 85 % of the target and, with the sharper steps
// above that, settles lower (1.7–1.9 % abandoned for a 3 % target in the
// 50-agent reference simulation).
// Until MinHistory calls were connected, and while the 30-day abandon
// rate is at or over the target, it paces progressively. It never places
// fewer calls than progressive pacing would.
//
// A Pacer is safe for concurrent use.
type Pacer struct {
	cfg Config

	mu                           sync.Mutex
	attempts, answered, abandons int64
	answerRate                   movingMean // 1 per answered attempt, 0 otherwise
	ringAnswered, ringFailed     movingMean // seconds
	answeredRings, failedRings   ringHistogram
	talk, wrap                   movingMean // seconds, connected calls
	window                       abandonWindow
	days                         [30]dayCount
	safety                       float64
	lastDay                      int64 // day of the last ToDial, or of the latest outcome before any
	decided                      bool  // ToDial was called
	predicting                   bool
	level                        float64
}

// New returns a Pacer with no history. Returns an error naming the field
// if cfg is invalid.
func New(cfg Config) (*Pacer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Pacer{cfg: cfg, window: newAbandonWindow(cfg.Window), safety: safetyStart}, nil
}

// Observe records an ended attempt, once: an unanswered call when it
// fails, an abandoned one when it is hung up, a connected one when its
// agent's wrap-up is over. Negative durations count as zero, durations
// over a day as a day.
func (p *Pacer) Observe(o Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mem := p.cfg.Memory
	p.attempts++
	ring := seconds(o.Ring)
	answered := o.Answered || o.Abandoned
	if !answered {
		p.answerRate.add(0, mem)
		p.ringFailed.add(ring, mem)
		p.failedRings.add(ring, mem)
		return
	}
	p.answered++
	p.answerRate.add(1, mem)
	p.ringAnswered.add(ring, mem)
	p.answeredRings.add(ring, mem)
	if o.Abandoned {
		p.abandons++
	} else {
		p.talk.add(seconds(o.Talk), mem)
		p.wrap.add(seconds(o.Wrap), mem)
	}
	p.window.add(o.Abandoned)
	day := dayOf(o.At)
	p.addDay(day, o.Abandoned)
	if !p.decided && (p.answered == 1 || day > p.lastDay) {
		p.lastDay = day
	}
	p.steer(o.Abandoned)
}

// ToDial returns how many new calls to place now, in [0, MaxDialLevel ×
// AgentsLoggedIn]: 0 when no agent is available.
func (p *Pacer) ToDial(now time.Time, s State) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decided, p.lastDay = true, dayOf(now)
	s = s.sanitized()
	available := s.AgentsLoggedIn - s.AgentsPaused
	if available <= 0 {
		p.level, p.predicting = 0, false
		return 0
	}
	talking := available - s.AgentsIdle - s.AgentsWrapping
	inProgress := s.CallsRinging + s.CallsQueued + talking
	limit := max(0, int(math.Floor(p.cfg.MaxDialLevel*float64(available)))-inProgress)

	// Progressive: every idle agent has one call in progress for it.
	n := max(0, s.AgentsIdle-s.CallsRinging-s.CallsQueued)
	p.predicting = p.cfg.Mode == Predictive && p.canPredict()
	if p.predicting {
		n = max(n, p.predict(now, s, talking))
	}
	n = min(n, limit)
	p.level = float64(inProgress+n) / float64(available)
	return n
}

// Snapshot returns the pacer's current estimates and dial level.
func (p *Pacer) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Snapshot{
		Mode:           p.cfg.Mode,
		Predicting:     p.predicting,
		Attempts:       p.attempts,
		Answered:       p.answered,
		Abandoned:      p.abandons,
		AnswerRate:     p.answerRate.v,
		AvgRingSeconds: p.ringAnswered.v,
		AvgFailSeconds: p.ringFailed.v,
		AvgTalkSeconds: p.talk.v,
		AvgWrapSeconds: p.wrap.v,
		AbandonRate:    p.window.rate(),
		AbandonRate30d: p.rate30d(),
		TargetAbandon:  p.cfg.TargetAbandon,
		Safety:         p.safety,
		DialLevel:      p.level,
	}
}

// maxCount bounds every State count, so that sums cannot overflow.
const maxCount = 1 << 24

// sanitized clamps counts to [0, maxCount] and makes them consistent.
func (s State) sanitized() State {
	c := func(v int) int { return min(max(v, 0), maxCount) }
	s.AgentsLoggedIn = c(s.AgentsLoggedIn)
	s.AgentsPaused = min(c(s.AgentsPaused), s.AgentsLoggedIn)
	s.AgentsIdle = min(c(s.AgentsIdle), s.AgentsLoggedIn-s.AgentsPaused)
	s.AgentsWrapping = min(c(s.AgentsWrapping), s.AgentsLoggedIn-s.AgentsPaused-s.AgentsIdle)
	s.CallsRinging = c(s.CallsRinging)
	s.CallsQueued = c(s.CallsQueued)
	return s
}

// seconds returns d in seconds, negative as 0, capped at a day.
func seconds(d time.Duration) float64 {
	return min(max(d.Seconds(), 0), 86400)
}

// movingMean is an exponentially weighted mean that is the plain mean of
// its first samples: the weight of a new sample is max(1/n, 1/memory).
type movingMean struct {
	n int64
	v float64
}

func (m *movingMean) add(x float64, memory int) {
	m.n++
	w := max(1/float64(m.n), 1/float64(memory))
	m.v += w * (x - m.v)
}
