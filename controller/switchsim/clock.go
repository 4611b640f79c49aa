package switchsim

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the simulator's source of time. Every callee behaviour, timeout
// and timestamp goes through it, in simulated time: a Clock decides how fast
// simulated time runs against the wall clock.
type Clock interface {
	// Now returns the current simulated time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d of simulated time has
	// passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call; it reports whether the call was still pending.
	Stop() bool
}

// scaledClock runs simulated time scale times slower than the wall clock
// (scale 0.01 makes a 60 s ring timeout take 600 ms). Simulated time starts
// at the wall-clock time of creation.
type scaledClock struct {
	scale    float64
	realBase time.Time
}

func newScaledClock(scale float64) *scaledClock {
	return &scaledClock{scale: scale, realBase: time.Now()}
}

func (c *scaledClock) Now() time.Time {
	if c.scale == 1 {
		return time.Now()
	}
	elapsed := time.Since(c.realBase)
	return c.realBase.Add(time.Duration(float64(elapsed) / c.scale))
}

func (c *scaledClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(time.Duration(float64(d)*c.scale), f)
}

// ManualClock is a Clock that only moves when Advance is called, so tests
// can drive ring timeouts and callee behaviour without waiting. Callbacks
// run synchronously inside Advance, in due order, each seeing Now equal to
// its due time.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers manualTimers
	seq    uint64
}

// NewManualClock returns a ManualClock whose time starts at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when Advance passes now+d.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTimer{clock: c, due: c.now.Add(d), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, running every callback that falls
// due on the way (including ones scheduled by those callbacks).
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	c.AdvanceTo(target)
}

// AdvanceTo moves the clock forward to t (never backwards), running every
// callback due on the way.
func (c *ManualClock) AdvanceTo(t time.Time) {
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].due.After(t) {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		next := heap.Pop(&c.timers).(*manualTimer)
		if next.due.After(c.now) {
			c.now = next.due
		}
		next.index = -1
		c.mu.Unlock()
		next.f()
	}
}

type manualTimer struct {
	clock *ManualClock
	due   time.Time
	seq   uint64
	f     func()
	index int
}

func (t *manualTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	t.index = -1
	return true
}

type manualTimers []*manualTimer

func (h manualTimers) Len() int { return len(h) }
func (h manualTimers) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h manualTimers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *manualTimers) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *manualTimers) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
