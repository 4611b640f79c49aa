package freeswitch

import (
	"sync"
	"sync/atomic"
)

// From the event reader to the sink
//
// The event connection's reader (eventconn.go) must never wait for the
// sink: FreeSWITCH drops a listener whose queue passes 100 000 events. So it
// only parses, filters and appends to an inbox; one dispatcher goroutine per
// switch takes the inbox in batches and maps, tracks and delivers each
// event, in the order the reader read them. One TCP connection carries the
// events in the order FreeSWITCH wrote them, and the fixtures show that
// order to follow Event-Sequence within each channel (the only inversions
// are between the two legs' CHANNEL_DESTROY), which is the order the domain
// needs; so nothing is reordered. Markers (SwitchConnected) pass through the
// same inbox, behind every event queued before them.

// counters are the event path's statistics.
type counters struct {
	queued, delivered, ignored, foreign, malformed, overflow atomic.Uint64
}

type marker uint8

const (
	markNone      marker = iota
	markConnected        // subscribed: tell the sink
)

type inboxItem struct {
	ev     event
	marker marker
}

// maxInbox bounds the queue; past it events are dropped and counted rather
// than block the reader or grow without bound. It is above FreeSWITCH's own
// limit (100 000), so a sink slower than the switch loses the connection
// first.
const maxInbox = 1 << 18

// keepSpare is the largest batch buffer kept for reuse after a burst.
const keepSpare = 1 << 14

// dispatcher delivers queued events on one goroutine.
type dispatcher struct {
	mu     sync.Mutex
	inbox  []inboxItem
	closed bool
	wake   chan struct{}
	done   chan struct{}

	spare     []inboxItem // owned by run
	deliver   func(*event)
	connected func()
	stats     *counters
	afterPush func() // test hook, nil in production
}

func newDispatcher(stats *counters, deliver func(*event), connected func()) *dispatcher {
	return &dispatcher{
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		deliver:   deliver,
		connected: connected,
		stats:     stats,
	}
}

// push queues an event. It never blocks for longer than an append.
func (d *dispatcher) push(ev event) {
	d.mu.Lock()
	if d.closed || len(d.inbox) >= maxInbox {
		d.mu.Unlock()
		d.stats.overflow.Add(1)
		return
	}
	d.inbox = append(d.inbox, inboxItem{ev: ev})
	d.mu.Unlock()
	d.stats.queued.Add(1)
	d.signal()
	if d.afterPush != nil {
		d.afterPush()
	}
}

// mark queues a marker behind every event already queued.
func (d *dispatcher) mark(m marker) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.inbox = append(d.inbox, inboxItem{marker: m})
	d.mu.Unlock()
	d.signal()
}

func (d *dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// close stops the dispatcher after delivering everything queued, and waits
// for it. Nothing is delivered after close returns.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.signal()
	<-d.done
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		<-d.wake
		d.mu.Lock()
		batch := d.inbox
		d.inbox = d.spare[:0]
		closed := d.closed
		d.mu.Unlock()

		for i := range batch {
			if batch[i].marker == markConnected {
				d.connected()
			} else {
				d.deliver(&batch[i].ev)
			}
			batch[i] = inboxItem{} // let the event's strings go
		}
		d.spare = nil
		if cap(batch) <= keepSpare {
			d.spare = batch[:0]
		}
		if closed {
			return
		}
	}
}
