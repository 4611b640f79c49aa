package pacing

import (
	"math"
	"time"
)

// Predictive pacing's constants.
const (
	// setpointShare is the share of TargetAbandon the feedback aims at,
	// leaving a margin for the noise of a finite window.
	setpointShare = 0.85
	// safetyStart is the margin, in standard deviations of the forecast,
	// predictive pacing starts with; safetyMin and safetyMax bound it.
	safetyStart = 1.0
	safetyMin   = -2.0
	safetyMax   = 6.0
	// safetyStep is added to the margin for each abandoned call while the
	// window's abandon rate is at or under the set point; each call that
	// found an agent takes off safetyStep×s/(1−s) (s the set point), so
	// with equal steps the margin would settle where a share s of answered
	// calls is abandoned; sharpFactor makes it settle lower.
	safetyStep = 0.1
	// sharpFactor: as the window's abandon rate climbs from the set point
	// to the target, each abandon adds up to (1+sharpFactor)×safetyStep.
	sharpFactor = 4.0
	// windowPrior is how many answered calls at the set point are mixed
	// into the window's abandon rate, so that its first calls do not jerk
	// the margin.
	windowPrior = 50
	// priorAnswerRate and priorWeight: the answer-rate estimate starts from
	// priorAnswerRate weighed as priorWeight attempts. A high prior dials
	// fewer calls while the history is short.
	priorAnswerRate = 0.5
	priorWeight     = 20
	// minAnswerRate bounds the answer-rate estimate from below.
	minAnswerRate = 0.01
	// maxCalls bounds a decision before it is converted to an int.
	maxCalls = 1e9
)

// canPredict reports whether predictive pacing may dial ahead: enough
// connected calls have been observed, and the 30-day abandon rate, once
// it rests on at least Window answered calls, is under the target.
func (p *Pacer) canPredict() bool {
	if p.talk.n < int64(p.cfg.MinHistory) {
		return false
	}
	n, a := p.count30d()
	return n < int64(p.cfg.Window) || float64(a) < p.cfg.TargetAbandon*float64(n)
}

// predict returns how many calls to place so that the answers expected
// from calls in progress and new calls match the agents expected free by
// the time new calls are answered, less a safety margin.
//
// The horizon is the mean time to answer. Agents expected free by then are
// the idle ones, the wrapping ones that finish within it (wrap-up spread
// evenly) and the talking ones whose talk and wrap-up both fit in it.
// Answers expected are the calls queued for an agent plus, for each
// ringing call, the chance it is still answered: p·Sa(age) / (p·Sa(age) +
// (1−p)·Sf(age)), with Sa and Sf the observed shares of answered and
// unanswered calls ringing longer than age (for calls of unknown age, the
// share of ringing time that belongs to answered calls). The margin is
// Safety standard deviations of the balance, agents freeing counted as
// Poisson and answers as Bernoulli draws, new calls included.
func (p *Pacer) predict(now time.Time, s State, talking int) int {
	pa := p.estAnswerRate()
	ra := max(p.ringAnswered.v, 1)
	talk := max(p.talk.v, 1)
	wrap := p.wrap.v
	h := ra
	free := float64(talking) * clamp01((h-wrap)/talk)
	if wrap > 0 {
		free += float64(s.AgentsWrapping) * min(1, h/wrap)
	} else {
		free += float64(s.AgentsWrapping)
	}
	answers, variance := p.ringingAnswers(now, s, pa)
	answers += float64(s.CallsQueued)
	balance := float64(s.AgentsIdle) + free - answers
	x := newAnswers(balance, free+variance, p.safety, pa)
	if !(x > 0) {
		return 0
	}
	return int(min(math.Floor(x/pa), maxCalls))
}

// ringingAnswers returns how many ringing calls are expected to be
// answered, and the variance of that count.
func (p *Pacer) ringingAnswers(now time.Time, s State, pa float64) (mean, variance float64) {
	known := min(len(s.RingingSince), s.CallsRinging)
	if known > 0 {
		sa, sf := p.answeredRings.survival(), p.failedRings.survival()
		for _, t := range s.RingingSince[:known] {
			age := now.Sub(t).Seconds()
			a, f := pa*sa.at(age), (1-pa)*sf.at(age)
			q := 0.0
			if a+f > 0 {
				q = a / (a + f)
			}
			mean += q
			variance += q * (1 - q)
		}
	}
	if rest := float64(s.CallsRinging - known); rest > 0 {
		ra, rf := max(p.ringAnswered.v, 1), p.ringFailed.v
		q := pa * ra / (pa*ra + (1-pa)*rf)
		mean += rest * q
		variance += rest * q * (1 - q)
	}
	return mean, variance
}

// newAnswers returns x, the answers to ask of new calls: the largest x with
// x + z·√(v + x(1−p)) ≤ balance, where v is the variance already in the
// forecast and x(1−p) the variance of x/p new calls answered with
// probability p. It may be negative.
func newAnswers(balance, v, z, p float64) float64 {
	c := 1 - p
	if c < 1e-9 {
		return balance - z*math.Sqrt(v)
	}
	d := v + balance*c
	if d < 0 {
		return -1
	}
	y := (-z*c + math.Sqrt(z*z*c*c+4*d)) / 2
	return (y*y - v) / c
}

// estAnswerRate returns the moving answer rate pulled towards
// priorAnswerRate while history is short, in [minAnswerRate, 1].
func (p *Pacer) estAnswerRate() float64 {
	n := float64(min(p.answerRate.n, int64(p.cfg.Memory)))
	r := (n*p.answerRate.v + priorWeight*priorAnswerRate) / (n + priorWeight)
	return min(max(r, minAnswerRate), 1)
}

// steer moves the safety margin on an answered call's outcome while
// predicting: up on an abandon, sharply as the window's rate nears the
// target; down a little on a call that found an agent, unless the window
// is at the target.
func (p *Pacer) steer(abandoned bool) {
	if !p.predicting {
		return
	}
	target := p.cfg.TargetAbandon
	set := setpointShare * target
	rate := p.window.smoothedRate(set)
	if abandoned {
		over := clamp01((rate - set) / (target - set))
		p.safety += safetyStep * (1 + sharpFactor*over)
	} else if rate < target {
		p.safety -= safetyStep * set / (1 - set)
	}
	p.safety = min(max(p.safety, safetyMin), safetyMax)
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }

// abandonWindow holds whether each of the last answered calls was
// abandoned.
type abandonWindow struct {
	calls       []bool
	n, next     int
	abandonedIn int
}

func newAbandonWindow(size int) abandonWindow {
	return abandonWindow{calls: make([]bool, size)}
}

func (w *abandonWindow) add(abandoned bool) {
	if w.n == len(w.calls) {
		if w.calls[w.next] {
			w.abandonedIn--
		}
	} else {
		w.n++
	}
	w.calls[w.next] = abandoned
	if abandoned {
		w.abandonedIn++
	}
	w.next = (w.next + 1) % len(w.calls)
}

// rate returns the window's abandon rate, 0 when empty.
func (w *abandonWindow) rate() float64 {
	if w.n == 0 {
		return 0
	}
	return float64(w.abandonedIn) / float64(w.n)
}

// smoothedRate returns the window's abandon rate with windowPrior calls
// at prior mixed in.
func (w *abandonWindow) smoothedRate(prior float64) float64 {
	return (float64(w.abandonedIn) + prior*windowPrior) / float64(w.n+windowPrior)
}

// dayCount is one UTC day's answered and abandoned calls.
type dayCount struct {
	used                bool
	day                 int64
	answered, abandoned int64
}

// dayOf returns t's day number since the Unix epoch (UTC).
func dayOf(t time.Time) int64 {
	u := t.Unix()
	d := u / 86400
	if u%86400 < 0 {
		d--
	}
	return d
}

// addDay counts an answered call in its day; a day more than 30 days
// older than the one in its slot is dropped.
func (p *Pacer) addDay(day int64, abandoned bool) {
	c := &p.days[((day%30)+30)%30]
	if !c.used || c.day < day {
		*c = dayCount{used: true, day: day}
	} else if c.day > day {
		return
	}
	c.answered++
	if abandoned {
		c.abandoned++
	}
}

// count30d returns the answered and abandoned calls of the 30 days ending
// with the last decision's day (or the latest outcome's, before any).
func (p *Pacer) count30d() (answered, abandoned int64) {
	for _, c := range p.days {
		if c.used && c.day <= p.lastDay && c.day > p.lastDay-30 {
			answered += c.answered
			abandoned += c.abandoned
		}
	}
	return answered, abandoned
}

// rate30d returns the 30-day abandon rate, 0 without answered calls.
func (p *Pacer) rate30d() float64 {
	n, a := p.count30d()
	if n == 0 {
		return 0
	}
	return float64(a) / float64(n)
}
