package dialer_test

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// fakeSwitch is a scripted controller.Switch: the number's last four digits
// pick what it reports, as switchsim's scenario table does, but the events
// are sent synchronously from Originate so tests control every step.
type fakeSwitch struct {
	name string
	sink controller.EventSink

	mu          sync.Mutex
	connected   bool
	connectedAt time.Time
	seq         uint64
	live        map[controller.CallID]controller.Channel
	originates  map[controller.CallID]int
	hangups     []controller.CallID
	refuseNext  int  // refuse this many originates with DESTINATION_OUT_OF_ORDER
	notSentNext int  // fail this many originates with ErrNotSent
	ambiguous   bool // the next originate times out after writing
	silent      bool // originate but emit no events (link about to drop)
	tracked     chan controller.CallID
	sent        chan controller.CallID
	// busiest is the most channels that were live when an originate came in.
	busiest int
}

func newFakeSwitch(name string) *fakeSwitch {
	return &fakeSwitch{name: name, connected: true, connectedAt: time.Now().Add(-time.Hour),
		live: map[controller.CallID]controller.Channel{}, originates: map[controller.CallID]int{},
		sent: make(chan controller.CallID, 1000), tracked: make(chan controller.CallID, 100)}
}

func (f *fakeSwitch) Name() string { return f.name }

func (f *fakeSwitch) Status() controller.SwitchStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return controller.SwitchStatus{Name: f.name, Kind: "freeswitch", Address: "fake", Connected: f.connected,
		ConnectedAt: f.connectedAt, Sessions: len(f.live)}
}

func (f *fakeSwitch) Track(id controller.CallID) {
	f.tracked <- id
}

func (f *fakeSwitch) emit(id controller.CallID, kind controller.EventKind, mod func(*controller.ChannelEvent)) {
	f.mu.Lock()
	f.seq++
	ev := controller.ChannelEvent{Switch: f.name, CallID: id, Kind: kind, Name: strings.ToUpper(string(kind)), Sequence: f.seq, At: time.Now()}
	f.mu.Unlock()
	if mod != nil {
		mod(&ev)
	}
	f.sink.HandleChannelEvent(ev)
}

func (f *fakeSwitch) Originate(ctx context.Context, req controller.OriginateRequest) error {
	f.mu.Lock()
	f.originates[req.CallID]++
	f.busiest = max(f.busiest, len(f.live))
	switch {
	case f.notSentNext > 0:
		f.notSentNext--
		f.mu.Unlock()
		return controller.ErrNotSent
	case f.ambiguous:
		f.ambiguous = false
		f.mu.Unlock()
		f.sent <- req.CallID
		return context.DeadlineExceeded
	case f.refuseNext > 0:
		f.refuseNext--
		f.mu.Unlock()
		f.sent <- req.CallID
		f.emit(req.CallID, controller.EventOriginateFailed, func(e *controller.ChannelEvent) { e.HangupCause = "DESTINATION_OUT_OF_ORDER" })
		return nil
	}
	silent := f.silent
	f.mu.Unlock()
	f.sent <- req.CallID
	id := req.CallID
	suffix := req.To[max(0, len(req.To)-4):]
	f.emit(id, controller.EventCreate, nil)
	switch suffix {
	case "1003":
		f.emit(id, controller.EventHangupComplete, func(e *controller.ChannelEvent) { e.HangupCause = "USER_BUSY" })
		f.emit(id, controller.EventOriginateFailed, func(e *controller.ChannelEvent) { e.HangupCause = "USER_BUSY" })
	case "1005": // answer and stay up
		f.mu.Lock()
		f.live[id] = controller.Channel{UUID: string(id), Answered: true}
		f.mu.Unlock()
		f.emit(id, controller.EventAnswer, nil)
		if !silent {
			f.emit(id, controller.EventOriginateAccepted, nil)
		}
	case "1009": // ringing, stays up unanswered
		f.mu.Lock()
		f.live[id] = controller.Channel{UUID: string(id)}
		f.mu.Unlock()
		f.emit(id, controller.EventProgress, nil)
	default: // answer, talk 3 s, hang up
		f.emit(id, controller.EventProgress, nil)
		f.emit(id, controller.EventAnswer, nil)
		f.emit(id, controller.EventOriginateAccepted, nil)
		f.emit(id, controller.EventHangupComplete, func(e *controller.ChannelEvent) {
			e.HangupCause, e.Billsec, e.Duration, e.Answered = "NORMAL_CLEARING", 3, 4, true
		})
	}
	return nil
}

// end hangs up a live call as its far end would.
func (f *fakeSwitch) end(id controller.CallID, report bool) {
	f.mu.Lock()
	ch := f.live[id]
	delete(f.live, id)
	f.mu.Unlock()
	if report {
		f.emit(id, controller.EventHangupComplete, func(e *controller.ChannelEvent) {
			e.HangupCause, e.Answered = "NORMAL_CLEARING", ch.Answered
			if ch.Answered {
				e.Billsec, e.Duration = 5, 5
			}
		})
	}
}

func (f *fakeSwitch) Hangup(ctx context.Context, id controller.CallID, cause string) error {
	f.mu.Lock()
	f.hangups = append(f.hangups, id)
	_, ok := f.live[id]
	f.mu.Unlock()
	if !ok {
		return controller.Errorf(controller.ENOTFOUND, "no such channel")
	}
	f.end(id, true)
	return nil
}

func (f *fakeSwitch) Channels(ctx context.Context) ([]controller.Channel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]controller.Channel, 0, len(f.live))
	for _, ch := range f.live {
		out = append(out, ch)
	}
	return out, nil
}

// reconnect simulates the ESL link coming back: a new connection time and a
// SwitchConnected callback.
func (f *fakeSwitch) reconnect() {
	f.mu.Lock()
	f.connectedAt = time.Now()
	f.mu.Unlock()
	f.sink.SwitchConnected(f.name)
}

func (f *fakeSwitch) originateCount(id controller.CallID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.originates[id]
}
