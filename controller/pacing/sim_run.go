package pacing

import (
	"math/rand/v2"
	"time"
)

// sim is one running simulation.
type sim struct {
	cfg    SimConfig
	pacer  *Pacer
	rng    *rand.Rand
	events eventQueue
	seq    uint64

	calls     []call
	freeCalls []int32
	agents    []agent
	idle      fifo        // idle agents, longest idle first
	queued    fifo        // answered calls waiting for an agent, oldest first
	since     []time.Time // ringing calls' placement times, rebuilt each tick

	ringing, wrapping int
	placed            int64
	answered          int64
	abandoned         int64
	connected         int64
	shiftConnects     int64         // connected during the shift
	shiftWait         time.Duration // agents' waits before shiftConnects
	busy              time.Duration // agents' talk and wrap-up during the shift
	maxLevel          float64
}

func (s *sim) schedule(at time.Duration, kind eventKind, id int32, gen uint32) {
	s.seq++
	s.events.push(event{at: at, seq: s.seq, kind: kind, id: id, gen: gen})
}

func (s *sim) handle(e event) {
	if e.kind == evTick {
		s.tick(e.at)
		return
	}
	if e.kind == evTalkEnd || e.kind == evWrapEnd {
		s.agentEvent(e)
		return
	}
	c := &s.calls[e.id]
	if c.gen != e.gen {
		return
	}
	switch e.kind {
	case evRingEnd:
		s.ringEnd(e.at, e.id)
	case evGraceEnd:
		if c.state == callQueued {
			// Every call waits as long, so the oldest waiting call is
			// the one whose grace ends.
			s.queued.pop()
			c.state = callAbandoned
			s.abandoned++
			s.schedule(e.at+s.cfg.IdentificationMessage, evMessageEnd, e.id, c.gen)
		}
	case evMessageEnd:
		s.pacer.Observe(Outcome{At: s.cfg.Start.Add(e.at), Answered: true, Abandoned: true, Ring: c.ring})
		s.release(e.id)
	}
}

// tick asks the pacer and places its calls, then schedules the next tick
// within the shift.
func (s *sim) tick(now time.Duration) {
	s.since = s.since[:0]
	for i := range s.calls {
		if c := &s.calls[i]; c.state == callRinging {
			s.since = append(s.since, s.cfg.Start.Add(c.placed))
		}
	}
	st := State{AgentsLoggedIn: len(s.agents), AgentsIdle: s.idle.len(), AgentsWrapping: s.wrapping,
		CallsRinging: s.ringing, RingingSince: s.since, CallsQueued: s.queued.len()}
	n := s.pacer.ToDial(s.cfg.Start.Add(now), st)
	s.maxLevel = max(s.maxLevel, s.pacer.Snapshot().DialLevel)
	for range n {
		if s.cfg.Leads > 0 && s.placed >= int64(s.cfg.Leads) {
			break
		}
		s.place(now)
	}
	if next := now + s.cfg.Tick; next < s.cfg.Duration {
		s.schedule(next, evTick, 0, 0)
	}
}

// place dials one callee.
func (s *sim) place(now time.Duration) {
	answer, ring, talk := s.cfg.Callee(s.rng)
	id := s.alloc()
	c := &s.calls[id]
	c.state, c.answer, c.ring, c.talk, c.placed = callRinging, answer, max(ring, 0), max(talk, 0), now
	s.placed++
	s.ringing++
	s.schedule(now+c.ring, evRingEnd, id, c.gen)
}

// ringEnd: the callee answers, to an idle agent or to the queue, or the
// call fails.
func (s *sim) ringEnd(now time.Duration, id int32) {
	c := &s.calls[id]
	s.ringing--
	if !c.answer {
		s.pacer.Observe(Outcome{At: s.cfg.Start.Add(now), Ring: c.ring})
		s.release(id)
		return
	}
	s.answered++
	c.answered = now
	if s.idle.len() > 0 {
		s.connect(now, s.idle.pop(), id)
		return
	}
	c.state = callQueued
	s.queued.push(id)
	s.schedule(now+s.cfg.AbandonAfter, evGraceEnd, id, c.gen)
}

// connect gives call id to idle agent a.
func (s *sim) connect(now time.Duration, a, id int32) {
	ag := &s.agents[a]
	c := &s.calls[id]
	if now < s.cfg.Duration {
		s.shiftConnects++
		s.shiftWait += now - ag.since
	}
	s.connected++
	c.state = callConnected
	ag.state, ag.since, ag.call = agentTalking, now, id
	s.schedule(now+c.talk, evTalkEnd, a, 0)
}

// agentEvent: a call ends and its agent wraps up, or the wrap-up ends and
// the agent takes the oldest waiting call or becomes idle.
func (s *sim) agentEvent(e event) {
	a := e.id
	ag := &s.agents[a]
	if e.kind == evTalkEnd {
		ag.state = agentWrapping
		ag.wrap = 0
		if s.cfg.WrapUp > 0 {
			ag.wrap = time.Duration(s.rng.ExpFloat64() * float64(s.cfg.WrapUp))
		}
		s.wrapping++
		s.schedule(e.at+ag.wrap, evWrapEnd, a, 0)
		return
	}
	s.wrapping--
	s.busy += s.inShift(e.at) - s.inShift(ag.since)
	c := &s.calls[ag.call]
	s.pacer.Observe(Outcome{At: s.cfg.Start.Add(e.at), Answered: true, Ring: c.ring, Talk: c.talk, Wrap: ag.wrap})
	s.release(ag.call)
	ag.state, ag.since, ag.call = agentIdle, e.at, -1
	if s.queued.len() > 0 {
		s.connect(e.at, a, s.queued.pop())
		return
	}
	s.idle.push(a)
}

// inShift clips t to the shift.
func (s *sim) inShift(t time.Duration) time.Duration { return min(t, s.cfg.Duration) }

// alloc returns a free call slot.
func (s *sim) alloc() int32 {
	if n := len(s.freeCalls); n > 0 {
		id := s.freeCalls[n-1]
		s.freeCalls = s.freeCalls[:n-1]
		return id
	}
	s.calls = append(s.calls, call{})
	return int32(len(s.calls) - 1)
}

// release frees a call slot; its pending events become stale.
func (s *sim) release(id int32) {
	c := &s.calls[id]
	*c = call{gen: c.gen + 1}
	s.freeCalls = append(s.freeCalls, id)
}

func (s *sim) result() SimResult {
	hours := s.cfg.Duration.Hours()
	r := SimResult{
		Mode: s.cfg.Pacing.Mode, Agents: len(s.agents), Hours: hours,
		Placed: s.placed, Answered: s.answered, Abandoned: s.abandoned, Connected: s.connected,
		Utilisation:       float64(s.busy) / (float64(len(s.agents)) * float64(s.cfg.Duration)),
		CallsPerAgentHour: float64(s.shiftConnects) / (float64(len(s.agents)) * hours),
		MaxDialLevel:      s.maxLevel,
		Pacer:             s.pacer.Snapshot(),
	}
	if s.answered > 0 {
		r.AbandonRate = float64(s.abandoned) / float64(s.answered)
	}
	if s.shiftConnects > 0 {
		r.AvgAgentWaitSeconds = (s.shiftWait / time.Duration(s.shiftConnects)).Seconds()
	}
	return r
}
