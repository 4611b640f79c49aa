package dialer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// tracker applies one switch's channel events to its in-flight calls, in the
// order the driver delivers them, and persists every change in batches: one
// database round trip carries all the changes that queued up while the
// previous one was being written.
type tracker struct {
	o *owner

	mu     sync.Mutex
	queue  []controller.ChannelEvent
	calls  map[controller.CallID]*entry
	signal chan struct{}
	// refused counts switch refusals per call across requeues.
	refused map[controller.CallID]int

	lastCheck time.Time
}

type entry struct {
	call        controller.Call
	sentAt      time.Time
	channelSeen bool // the switch created a channel for it
	missing     int  // consecutive channel lists without it
}

type goneCall struct {
	id       controller.CallID
	answered bool
}

func newTracker(o *owner) *tracker {
	return &tracker{o: o, calls: map[controller.CallID]*entry{}, refused: map[controller.CallID]int{}, signal: make(chan struct{}, 1)}
}

func (t *tracker) push(ev controller.ChannelEvent) {
	t.mu.Lock()
	t.queue = append(t.queue, ev)
	t.mu.Unlock()
	select {
	case t.signal <- struct{}{}:
	default:
	}
}

// add starts tracking a call that is about to be originated.
func (t *tracker) add(c controller.Call, sentAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls[c.ID] = &entry{call: c, sentAt: sentAt}
	t.o.svc.metrics.inflight.WithLabelValues(t.o.name).Set(float64(len(t.calls)))
}

// adopt starts tracking a call found in flight in the database (sent by an
// earlier process). It reports whether the call was new to the tracker.
func (t *tracker) adopt(c controller.Call) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.calls[c.ID]; ok {
		return false
	}
	t.calls[c.ID] = &entry{call: c, sentAt: c.UpdatedAt, channelSeen: c.State != controller.CallOriginating}
	t.o.svc.metrics.inflight.WithLabelValues(t.o.name).Set(float64(len(t.calls)))
	return true
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// countBy counts the tracked calls by key (their trunk).
func (t *tracker) countBy(key func(controller.Call) string) map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for _, e := range t.calls {
		out[key(e.call)]++
	}
	return out
}

func (t *tracker) forget(id controller.CallID) {
	t.mu.Lock()
	delete(t.calls, id)
	n := len(t.calls)
	t.mu.Unlock()
	t.o.svc.metrics.inflight.WithLabelValues(t.o.name).Set(float64(n))
	t.o.poke() // a session slot is free
}

// dueForCheck reports whether a periodic reconciliation is due.
func (t *tracker) dueForCheck(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastCheck.IsZero() {
		t.lastCheck = now
		return false
	}
	if now.Sub(t.lastCheck) < t.o.svc.cfg.ReconcileInterval || len(t.calls) == 0 {
		return false
	}
	t.lastCheck = now
	return true
}

// compare finds tracked calls that the switch no longer lists and answered
// calls whose answer was missed. Only calls sent before connectedAt are
// judged: later ones may not have a channel yet.
func (t *tracker) compare(live map[controller.CallID]controller.Channel, connectedAt time.Time, afterConnect bool, now time.Time) (gone []goneCall, answered []controller.CallID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastCheck = now
	for id, e := range t.calls {
		if ch, ok := live[id]; ok {
			e.missing = 0
			if ch.Answered && e.call.State != controller.CallAnswered && !e.call.State.Terminal() {
				answered = append(answered, id)
			}
			continue
		}
		if !e.sentAt.Before(connectedAt) {
			continue
		}
		if !afterConnect {
			// Periodic check: the hangup may simply still be on its way.
			e.missing++
			if e.missing < 2 || now.Sub(e.sentAt) < t.o.svc.cfg.ReconcileInterval {
				continue
			}
		}
		gone = append(gone, goneCall{id: id, answered: e.call.State == controller.CallAnswered || e.call.AnsweredAt != nil})
	}
	return gone, answered
}

// notSent handles an originate that never reached the switch: the call goes
// back to the queue (or fails if the driver rejected its input).
func (t *tracker) notSent(ctx context.Context, id controller.CallID, cause error) {
	t.mu.Lock()
	c := controller.Call{ID: id, State: controller.CallOriginating}
	if e, ok := t.calls[id]; ok {
		c = e.call
	}
	t.mu.Unlock()
	t.forget(id)
	ctx = context.WithoutCancel(ctx)
	now := t.o.svc.cfg.Now()
	ev := controller.ChannelEvent{Switch: t.o.name, CallID: id, Kind: controller.EventOriginateFailed, Name: "NOT_SENT", At: now, Detail: cause.Error()}
	if controller.ErrorCode(cause) == controller.EINVALID {
		// The driver cannot carry this request safely; sending it again
		// would not help.
		t.saveFailed(ctx, c, ev)
		return
	}
	t.requeue(ctx, c, ev)
}

// requeue puts a call that was never dialled back in the queue.
func (t *tracker) requeue(ctx context.Context, c controller.Call, ev controller.ChannelEvent) {
	if err := t.o.svc.store.RequeueRefused(ctx, c.ID, t.o.svc.cfg.Now().Add(t.o.svc.cfg.RefusalDelay), ev); err != nil {
		t.o.log.Error("returning call to the queue", "call_id", c.ID, "err", err)
		return
	}
	if f := t.o.svc.cfg.OnCallUpdate; f != nil {
		c.State = controller.CallQueued
		f(c)
	}
}

func (t *tracker) saveFailed(ctx context.Context, c controller.Call, ev controller.ChannelEvent) {
	id := c.ID
	from := c.State
	if _, err := controller.Apply(&c, ev); err != nil {
		t.o.log.Error("failing call", "call_id", id, "err", err)
		return
	}
	t.save(ctx, []controller.CallUpdate{{Call: c, From: from, Event: ev}})
}

// refusable reports whether a failed originate with no channel created is the
// switch refusing work (its session limit, congestion) rather than the far
// end answering with a cause: such attempts go back to the queue.
func refusable(cause string) bool {
	switch cause {
	case "DESTINATION_OUT_OF_ORDER", "SWITCH_CONGESTION", "NORMAL_TEMPORARY_FAILURE", "NORMAL_CIRCUIT_CONGESTION":
		return true
	}
	return false
}

func (t *tracker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.signal:
		}
		t.mu.Lock()
		batch := t.queue
		t.queue = nil
		t.mu.Unlock()
		if len(batch) > 0 {
			t.apply(ctx, batch)
		}
	}
}

// apply folds a batch of events into the tracked calls and persists the
// changes. A database failure is retried until it succeeds or ctx ends:
// the calls stay tracked meanwhile, and reconciliation repairs anything a
// crash loses.
func (t *tracker) apply(ctx context.Context, batch []controller.ChannelEvent) {
	var ups []controller.CallUpdate
	var ended []controller.CallID
	requeued := false
	for _, ev := range batch {
		t.mu.Lock()
		e, ok := t.calls[ev.CallID]
		if !ok {
			t.mu.Unlock()
			t.o.svc.metrics.droppedEvents.Inc()
			continue
		}
		switch ev.Kind {
		case controller.EventCreate, controller.EventProgress, controller.EventProgressMedia,
			controller.EventAnswer, controller.EventHangup, controller.EventHangupComplete, controller.EventDestroy:
			if ev.Sequence != 0 {
				e.channelSeen = true
			}
		}
		if ev.Kind == controller.EventOriginateFailed && !e.channelSeen && refusable(ev.HangupCause) && t.refused[ev.CallID] < t.o.svc.cfg.MaxRefusals {
			// The switch refused before creating a channel: nothing was
			// dialled, so the attempt may wait for capacity and go again.
			delete(t.calls, ev.CallID)
			t.refused[ev.CallID]++
			t.mu.Unlock()
			t.o.svc.metrics.refusals.WithLabelValues(t.o.name, ev.HangupCause).Inc()
			t.o.log.Warn("switch refused the originate; requeued", "call_id", ev.CallID, "cause", ev.HangupCause)
			if len(ups) > 0 {
				t.save(ctx, ups)
				ups = nil
			}
			t.requeue(ctx, e.call, ev)
			// Not forgotten below: it is already out of t.calls, and once
			// requeued the owner may claim and track it again before this
			// batch ends — forgetting it then would drop its new events.
			requeued = true
			continue
		}
		from := e.call.State
		changed, err := controller.Apply(&e.call, ev)
		call := e.call
		t.mu.Unlock()
		if err != nil {
			t.o.svc.metrics.illegal.Inc()
			t.o.log.Warn("illegal transition rejected", "call_id", ev.CallID, "event", ev.Name, "err", err)
			continue
		}
		t.media(call, from, ev)
		if !changed {
			continue
		}
		if from != call.State {
			t.o.svc.metrics.transitions.WithLabelValues(string(call.State)).Inc()
		}
		ups = append(ups, controller.CallUpdate{Call: call, From: from, Event: ev})
		if call.State.Terminal() {
			ended = append(ended, ev.CallID)
			t.mu.Lock()
			delete(t.refused, ev.CallID)
			t.mu.Unlock()
		}
	}
	if len(ups) > 0 {
		t.save(ctx, ups)
	}
	for _, id := range ended {
		t.forget(id)
	}
	if requeued {
		t.o.poke() // a session slot is free and an attempt is due again
	}
}

func (t *tracker) save(ctx context.Context, ups []controller.CallUpdate) {
	backoff := 50 * time.Millisecond
	for {
		err := t.o.svc.store.SaveCallUpdates(ctx, ups)
		if err == nil {
			if f := t.o.svc.cfg.OnCallUpdate; f != nil {
				for _, u := range ups {
					f(u.Call)
				}
			}
			return
		}
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return
		}
		t.o.log.Error("saving call updates; retrying", "count", len(ups), "err", err)
		t.o.sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
}
