package pacing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Callee draws how one callee reacts to a call, using r only: whether a
// live person answers, the ring time until the answer (or until the call
// fails), and the talk time once answered. Negative durations count as
// zero.
type Callee func(r *rand.Rand) (answer bool, ring, talk time.Duration)

// SimConfig configures Simulate.
type SimConfig struct {
	// Pacing configures the pacer under test.
	Pacing Config
	// Agents is the number of agents, logged in all the time, in
	// [1, 100 000].
	Agents int
	// Duration is the shift, in virtual time, in (0, 31 days]. The dialer
	// places calls until then; calls in progress then finish.
	Duration time.Duration
	// Callee draws each callee's reaction. Required.
	Callee Callee
	// WrapUp is the mean after-call work of an agent (exponentially
	// distributed); 0 means none.
	WrapUp time.Duration
	// AbandonAfter is how long an answered call may wait for an agent
	// before it is abandoned. 0 means 2 s.
	AbandonAfter time.Duration
	// IdentificationMessage is the length of the message an abandoned call
	// hears before it is hung up; it takes no agent time. 0 means 5 s.
	IdentificationMessage time.Duration
	// Tick is how often the pacer is asked how many calls to place, at
	// least 1 ms. 0 means 1 s.
	Tick time.Duration
	// Seed seeds every random draw: same config, same result.
	Seed uint64
	// Leads is how many numbers the list holds; 0 means unlimited.
	Leads int
	// Start is the virtual time of the shift's start. Zero means Monday
	// 2025-01-06 09:00 UTC.
	Start time.Time
}

// SimResult is what a simulated shift measured.
type SimResult struct {
	Mode   Mode    `json:"mode"`
	Agents int     `json:"agents"`
	Hours  float64 `json:"hours"`
	// Placed counts calls placed; Answered those a live person answered;
	// Abandoned those answered with no agent within AbandonAfter;
	// Connected those that reached an agent. Every placed call ends, even
	// after the shift.
	Placed    int64 `json:"calls_placed"`
	Answered  int64 `json:"answered"`
	Abandoned int64 `json:"abandoned"`
	Connected int64 `json:"connected"`
	// AbandonRate is Abandoned ÷ Answered (0 without answers).
	AbandonRate float64 `json:"abandon_rate"`
	// Utilisation is the time agents spent talking or in wrap-up during the
	// shift ÷ the agents' logged-in time (Agents × Duration). Time waiting
	// for an answer counts as idle.
	Utilisation float64 `json:"agent_utilisation"`
	// AvgAgentWaitSeconds is the mean time from an agent becoming free (or
	// the shift's start) to its next call, over calls connected during the
	// shift.
	AvgAgentWaitSeconds float64 `json:"avg_agent_wait_seconds"`
	// CallsPerAgentHour is calls connected during the shift ÷ agent-hours.
	CallsPerAgentHour float64 `json:"calls_per_agent_hour"`
	// MaxDialLevel is the highest dial level the pacer decided.
	MaxDialLevel float64 `json:"max_dial_level"`
	// Pacer is the pacer's snapshot at the shift's end.
	Pacer Snapshot `json:"pacer"`
}

// defaultSimStart is SimConfig.Start's default.
var defaultSimStart = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

func (c SimConfig) withDefaults() SimConfig {
	if c.AbandonAfter == 0 {
		c.AbandonAfter = 2 * time.Second
	}
	if c.IdentificationMessage == 0 {
		c.IdentificationMessage = 5 * time.Second
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.Start.IsZero() {
		c.Start = defaultSimStart
	}
	return c
}

// Validate returns an error naming the first invalid field, or nil.
func (c SimConfig) Validate() error {
	if err := c.Pacing.Validate(); err != nil {
		return err
	}
	c = c.withDefaults()
	switch {
	case c.Agents < 1 || c.Agents > 100_000:
		return fmt.Errorf("pacing: SimConfig.Agents %d not in [1, 100000]", c.Agents)
	case c.Duration <= 0 || c.Duration > 31*24*time.Hour:
		return fmt.Errorf("pacing: SimConfig.Duration %v not in (0, 744h]", c.Duration)
	case c.Callee == nil:
		return errors.New("pacing: SimConfig.Callee is required")
	case c.WrapUp < 0:
		return fmt.Errorf("pacing: SimConfig.WrapUp %v is negative", c.WrapUp)
	case c.AbandonAfter < 0:
		return fmt.Errorf("pacing: SimConfig.AbandonAfter %v is negative", c.AbandonAfter)
	case c.IdentificationMessage < 0:
		return fmt.Errorf("pacing: SimConfig.IdentificationMessage %v is negative", c.IdentificationMessage)
	case c.Tick < time.Millisecond:
		return fmt.Errorf("pacing: SimConfig.Tick %v is under 1ms", c.Tick)
	case c.Leads < 0:
		return fmt.Errorf("pacing: SimConfig.Leads %d is negative", c.Leads)
	}
	return nil
}

// Simulate runs a shift of a dialer, its agents and its callees in
// virtual time: a discrete-event simulation on an event queue, with no
// goroutines and no wall clock, deterministic for a given config. Agents
// take answered calls first come, first served, the longest-idle agent
// first; after each call an agent wraps up, then is free. The pacer
// observes every ended attempt, a connected call once its wrap-up is over.
// Returns an error naming the field if cfg is invalid.
func Simulate(cfg SimConfig) (SimResult, error) {
	if err := cfg.Validate(); err != nil {
		return SimResult{}, err
	}
	cfg = cfg.withDefaults()
	pacer, err := New(cfg.Pacing)
	if err != nil {
		return SimResult{}, err
	}
	s := &sim{cfg: cfg, pacer: pacer, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		agents: make([]agent, cfg.Agents)}
	for i := range s.agents {
		s.idle.push(int32(i))
	}
	s.schedule(0, evTick, 0, 0)
	for len(s.events) > 0 {
		s.handle(s.events.pop())
	}
	return s.result(), nil
}

// eventKind is what happens at an event.
type eventKind uint8

const (
	evTick       eventKind = iota // ask the pacer
	evRingEnd                     // a call is answered or fails
	evGraceEnd                    // a queued call's wait for an agent is over
	evMessageEnd                  // an abandoned call's message is over
	evTalkEnd                     // an agent's call ends: wrap-up
	evWrapEnd                     // an agent is free
)

// event is one scheduled happening; seq orders simultaneous events
// first scheduled, first handled.
type event struct {
	at   time.Duration // since the shift's start
	seq  uint64
	kind eventKind
	id   int32  // call or agent
	gen  uint32 // the call's generation, for call events
}

// eventQueue is a binary min-heap of events by (at, seq).
type eventQueue []event

func (q eventQueue) less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}

func (q *eventQueue) push(e event) {
	*q = append(*q, e)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *eventQueue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h.less(l, small) {
			small = l
		}
		if r < len(h) && h.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	*q = h
	return top
}

// callState is where a call is.
type callState uint8

const (
	callFree callState = iota // slot unused
	callRinging
	callQueued
	callAbandoned
	callConnected
)

type call struct {
	gen      uint32
	state    callState
	answer   bool
	ring     time.Duration
	talk     time.Duration
	placed   time.Duration
	answered time.Duration // when answered
}

type agentState uint8

const (
	agentIdle agentState = iota
	agentTalking
	agentWrapping
)

type agent struct {
	state agentState
	since time.Duration // idle since, or busy since
	call  int32
	wrap  time.Duration
}

// fifo is a first-in, first-out queue of ids.
type fifo struct {
	items []int32
	head  int
}

func (f *fifo) push(id int32) { f.items = append(f.items, id) }
func (f *fifo) len() int      { return len(f.items) - f.head }
func (f *fifo) pop() int32 {
	id := f.items[f.head]
	f.head++
	if f.head > 1024 && f.head*2 > len(f.items) {
		f.items = append(f.items[:0], f.items[f.head:]...)
		f.head = 0
	}
	return id
}
