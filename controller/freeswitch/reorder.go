package freeswitch

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/percipia/eslgo"
)

// Restoring event order
//
// eslgo reads events in wire order but calls every listener in a new
// goroutine, so they reach callgate in whatever order the scheduler runs
// those goroutines; FreeSWITCH itself may also write two events out of
// Event-Sequence order (fixture 10: DESTROY 1780 before 1779). A ticket
// taken in the listener cannot help: the goroutines take it in the wrong
// order too. What is known is that an event read from the wire before
// another is handed to the runtime (go listener(ev)) before it, so a lower
// sequence that is still in flight shows up within a scheduling delay of a
// higher one.
//
// So the listener only appends to an inbox (it never blocks: eslgo's read
// loop must keep draining the socket, and FreeSWITCH drops a listener whose
// queue passes 100 000 events), and one dispatcher goroutine per switch
// moves events into a min-heap keyed by Event-Sequence. An event is held for
// the reorder window after it arrived; when it is released, every held event
// with a lower sequence is released before it, in sequence order. An event
// whose sequence is at or below the last one released (it lost the race by
// more than the window, or FreeSWITCH restarted) is released at once and
// counted as late; the domain's state machine never moves a call backwards,
// so a rare late event is harmless. If more than maxHeld events are waiting
// (a burst), the lowest is released early. On reconnect the heap is flushed
// and the sequence memory reset. Global sequence order implies per-call
// order; gaps in the sequence (events of other subscribers, filtered
// channels) do not matter because nothing waits for a specific number.

// reorderBuffer holds values keyed by sequence; see above. It is not safe
// for concurrent use: the dispatcher goroutine owns it. Time is passed in so
// tests can drive it.
type reorderBuffer[T any] struct {
	hold time.Duration
	max  int

	heap      []held[T]
	fifo      []arrival // arrival order, oldest first
	n         uint64    // arrival counter, breaks sequence ties
	watermark uint64    // highest sequence among events held for the window
	last      uint64    // highest sequence released
	released  bool      // last is meaningful
	late      uint64
}

type held[T any] struct {
	seq, n uint64
	v      T
}

type arrival struct {
	at  time.Time
	seq uint64
}

func newReorderBuffer[T any](hold time.Duration, maxHeld int) *reorderBuffer[T] {
	return &reorderBuffer[T]{hold: hold, max: maxHeld}
}

// push adds v with sequence seq, arrived at now.
func (r *reorderBuffer[T]) push(seq uint64, v T, now time.Time) {
	if r.released && seq <= r.last {
		r.late++
	}
	r.n++
	r.heapPush(held[T]{seq: seq, n: r.n, v: v})
	r.fifo = append(r.fifo, arrival{at: now, seq: seq})
}

// release appends to out, in sequence order, every value that may go now.
func (r *reorderBuffer[T]) release(now time.Time, out []T) []T {
	cutoff := now.Add(-r.hold)
	i := 0
	for ; i < len(r.fifo) && !r.fifo[i].at.After(cutoff); i++ {
		if r.fifo[i].seq > r.watermark {
			r.watermark = r.fifo[i].seq
		}
	}
	if i == len(r.fifo) {
		r.fifo = r.fifo[:0]
	} else {
		r.fifo = r.fifo[i:]
	}
	for len(r.heap) > 0 {
		m := r.heap[0]
		if m.seq <= r.watermark || (r.released && m.seq <= r.last) || len(r.heap) > r.max {
			out = append(out, r.pop())
			continue
		}
		break
	}
	return out
}

// flush appends every held value in sequence order and forgets the
// sequence history (a new connection, or a stop).
func (r *reorderBuffer[T]) flush(out []T) []T {
	for len(r.heap) > 0 {
		out = append(out, r.pop())
	}
	r.fifo = r.fifo[:0]
	r.watermark, r.last, r.released = 0, 0, false
	return out
}

// deadline is when the oldest held event's window ends.
func (r *reorderBuffer[T]) deadline() (time.Time, bool) {
	if len(r.fifo) == 0 {
		return time.Time{}, false
	}
	return r.fifo[0].at.Add(r.hold), true
}

func (r *reorderBuffer[T]) len() int { return len(r.heap) }

func (r *reorderBuffer[T]) pop() T {
	m := r.heap[0]
	last := len(r.heap) - 1
	r.heap[0] = r.heap[last]
	var zero held[T]
	r.heap[last] = zero
	r.heap = r.heap[:last]
	r.down(0)
	if !r.released || m.seq > r.last {
		r.last = m.seq
	}
	r.released = true
	return m.v
}

func (r *reorderBuffer[T]) less(i, j int) bool {
	a, b := &r.heap[i], &r.heap[j]
	return a.seq < b.seq || (a.seq == b.seq && a.n < b.n)
}

func (r *reorderBuffer[T]) heapPush(h held[T]) {
	r.heap = append(r.heap, h)
	for i := len(r.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !r.less(i, p) {
			break
		}
		r.heap[i], r.heap[p] = r.heap[p], r.heap[i]
		i = p
	}
}

func (r *reorderBuffer[T]) down(i int) {
	n := len(r.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if rr := l + 1; rr < n && r.less(rr, l) {
			m = rr
		}
		if !r.less(m, i) {
			return
		}
		r.heap[i], r.heap[m] = r.heap[m], r.heap[i]
		i = m
	}
}

// counters are the dispatcher's statistics.
type counters struct {
	queued, delivered, ignored, foreign, late, overflow atomic.Uint64
}

type marker uint8

const (
	markNone      marker = iota
	markReset            // a new connection: flush what the old one left
	markConnected        // subscribed: tell the sink
)

type inboxItem struct {
	ev     *eslgo.Event
	marker marker
}

// maxInbox bounds the listener's queue; past it events are dropped and
// counted rather than block eslgo's read loop or grow without bound.
const maxInbox = 1 << 20

// dispatcher moves events from eslgo's listener goroutines, through the
// reorder buffer, to deliver, on one goroutine.
type dispatcher struct {
	mu     sync.Mutex
	inbox  []inboxItem
	closed bool
	wake   chan struct{}
	done   chan struct{}

	spare     []inboxItem // owned by run
	buf       *reorderBuffer[*eslgo.Event]
	deliver   func(*eslgo.Event)
	connected func()
	stats     *counters
	afterPush func() // test hook, nil in production
}

func newDispatcher(hold time.Duration, maxHeld int, stats *counters, deliver func(*eslgo.Event), connected func()) *dispatcher {
	return &dispatcher{
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		buf:       newReorderBuffer[*eslgo.Event](hold, maxHeld),
		deliver:   deliver,
		connected: connected,
		stats:     stats,
	}
}

// push queues an event. It never blocks for longer than an append.
func (d *dispatcher) push(ev *eslgo.Event) {
	d.enqueue(inboxItem{ev: ev})
	if d.afterPush != nil {
		d.afterPush()
	}
}

// mark queues a marker behind every event already queued.
func (d *dispatcher) mark(m marker) { d.enqueue(inboxItem{marker: m}) }

func (d *dispatcher) enqueue(it inboxItem) {
	d.mu.Lock()
	if d.closed || (it.ev != nil && len(d.inbox) >= maxInbox) {
		d.mu.Unlock()
		if it.ev != nil {
			d.stats.overflow.Add(1)
		}
		return
	}
	d.inbox = append(d.inbox, it)
	d.mu.Unlock()
	if it.ev != nil {
		d.stats.queued.Add(1)
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// close stops the dispatcher after delivering everything queued and held,
// and waits for it. Nothing is delivered after close returns.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}

func (d *dispatcher) run() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var out []*eslgo.Event
	for {
		select {
		case <-d.wake:
		case <-timer.C:
		}
		d.mu.Lock()
		batch := d.inbox
		d.inbox = d.spare[:0]
		closed := d.closed
		d.mu.Unlock()

		now := time.Now()
		for i := range batch {
			switch batch[i].marker {
			case markReset:
				out = d.emit(d.buf.flush(out))
			case markConnected:
				d.connected()
			default:
				d.buf.push(eventSequence(batch[i].ev.Headers), batch[i].ev, now)
			}
			batch[i] = inboxItem{}
		}
		d.spare = batch
		if closed {
			d.emit(d.buf.flush(out))
			d.stats.late.Store(d.buf.late)
			return
		}
		out = d.emit(d.buf.release(now, out))
		d.stats.late.Store(d.buf.late)
		if at, ok := d.buf.deadline(); ok {
			timer.Reset(time.Until(at))
		}
	}
}

// emit delivers out and returns it emptied for reuse.
func (d *dispatcher) emit(out []*eslgo.Event) []*eslgo.Event {
	for i, ev := range out {
		d.deliver(ev)
		out[i] = nil
	}
	return out[:0]
}
