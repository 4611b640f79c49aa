package freeswitch

import (
	"sync/atomic"

	"github.com/callgate/callgate/controller/driverkit"
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

// dispatcher delivers queued events on one goroutine.
type dispatcher struct {
	inbox     driverkit.Inbox[inboxItem]
	deliver   func(*event)
	connected func()
	stats     *counters
	afterPush func() // test hook, nil in production
}

func newDispatcher(stats *counters, deliver func(*event), connected func()) *dispatcher {
	return &dispatcher{
		inbox:     driverkit.Inbox[inboxItem]{Max: maxInbox},
		deliver:   deliver,
		connected: connected,
		stats:     stats,
	}
}

// push queues an event. It never blocks for longer than an append.
func (d *dispatcher) push(ev event) {
	if !d.inbox.Push(inboxItem{ev: ev}) {
		d.stats.overflow.Add(1)
		return
	}
	d.stats.queued.Add(1)
	if d.afterPush != nil {
		d.afterPush()
	}
}

// mark queues a marker behind every event already queued.
func (d *dispatcher) mark(m marker) { d.inbox.Push(inboxItem{marker: m}) }

// close stops the dispatcher after delivering everything queued, and waits
// for it. Nothing is delivered after close returns.
func (d *dispatcher) close() { d.inbox.Close() }

func (d *dispatcher) run() {
	d.inbox.Run(func(it *inboxItem) {
		if it.marker == markConnected {
			d.connected()
		} else {
			d.deliver(&it.ev)
		}
	})
}
