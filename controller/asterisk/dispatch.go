package asterisk

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/driverkit"
)

// From the WebSocket reader to the sink
//
// The reader never waits for the sink: it decodes, filters and appends to
// an inbox; one dispatcher goroutine per switch takes the inbox in batches
// and maps, tracks and delivers each event in the order Asterisk sent it
// (one WebSocket carries one ordered stream). Synthetic events
// (EventRecordStart/Stop, the failure of a call that vanished silently) and
// markers (SwitchConnected, link lost) pass through the same inbox, so they
// keep their place in a call's order.

type counters struct {
	queued, delivered, foreign, malformed, overflow atomic.Uint64
}

type marker uint8

const (
	markNone marker = iota
	markConnected
	markLinkLost
)

type inboxItem struct {
	ev        event
	synthetic *controller.ChannelEvent // delivered as is when set
	vanished  controller.CallID        // a call whose channel is gone without events
	marker    marker
}

const maxInbox = 1 << 18

type dispatcher struct {
	inbox   driverkit.Inbox[inboxItem]
	handle  func(*inboxItem)
	connect func()
	stats   *counters
}

func newDispatcher(stats *counters, handle func(*inboxItem), connected func()) *dispatcher {
	return &dispatcher{inbox: driverkit.Inbox[inboxItem]{Max: maxInbox}, handle: handle, connect: connected, stats: stats}
}

// push queues an item; it never blocks for longer than an append.
func (d *dispatcher) push(it inboxItem) {
	if !d.inbox.Push(it) {
		d.stats.overflow.Add(1)
		return
	}
	d.stats.queued.Add(1)
}

func (d *dispatcher) mark(m marker) { d.inbox.Push(inboxItem{marker: m}) }

// close stops the dispatcher after delivering everything queued, and waits.
func (d *dispatcher) close() { d.inbox.Close() }

func (d *dispatcher) run() {
	d.inbox.Run(func(it *inboxItem) {
		if it.marker == markConnected {
			d.connect()
		} else {
			d.handle(it)
		}
	})
}

// handle maps one queued item onto the sink and the media steps. It runs on
// the dispatcher goroutine only, which owns every callState's fields.
func (s *Switch) handle(it *inboxItem) {
	switch {
	case it.marker == markLinkLost:
		s.media.linkLost(controller.Errorf(controller.EUNAVAILABLE,
			"the connection to switch %s was lost during the step", s.cfg.Name))
		return
	case it.synthetic != nil:
		s.emit(*it.synthetic)
		return
	case it.vanished != "":
		if c := s.calls.get(string(it.vanished)); c != nil && !c.seen {
			c.log.Warn("channel vanished without a single event; is the Stasis app registered?")
			s.finish(c, time.Now().UTC(), causeUnregisteredApp, "no events: Stasis app not reached")
		}
		return
	}
	ev := &it.ev
	switch ev.Type {
	case evPlaybackStarted, evPlaybackFinished, evRecordingStarted, evRecordingFinished, evRecordingFailed:
		s.media.objectEvent(ev)
		return
	}
	id := ev.channelID()
	c := s.calls.get(id)
	if c == nil {
		if !s.media.objectEvent(ev) {
			s.stats.foreign.Add(1)
		}
		return
	}
	c.seen = true
	if c.created.IsZero() {
		ch := ev.Channel
		if ev.Type == evDial {
			ch = ev.Peer
		}
		if t := time.Time(ch.CreationTime); !t.IsZero() {
			c.created = t.UTC()
		}
	}
	at := ev.at()
	switch ev.Type {
	case evDial:
		switch {
		case ev.DialStatus == "RINGING":
			s.progress(c, at, "Dial RINGING")
		case ev.DialStatus == "ANSWER":
			// ChannelStateChange(Up) came first and carried the answer.
		case finalDial(ev.DialStatus):
			c.dialStatus = ev.DialStatus
			if c.stasis && !c.answered {
				// channels/create + dial: a busy channel stays in Stasis
				// until the app hangs it up (README).
				s.hangupFailed(c.id, failureCause(c.dialStatus, 0, false))
			}
		}
	case evStateChange:
		switch ev.Channel.State {
		case "Ringing", "Ring":
			s.progress(c, at, "ChannelStateChange Ringing")
		case "Up":
			s.answer(c, at, "ChannelStateChange Up")
		}
	case evStasisStart:
		c.stasis = true
		if ev.Channel.State == "Up" {
			s.answer(c, at, "StasisStart")
		}
		s.accept(c, at)
	case evHangupRequest:
		// soft:true carries the soft-hangup flag (32 after DELETE), never a
		// Q.850 cause: ChannelDestroyed has the real one.
		s.media.hungUp(c.id)
	case evStasisEnd:
		s.media.hungUp(c.id)
	case evDTMF:
		s.media.dtmf(c.id, ev.Digit)
	case evDestroyed:
		if ev.Channel.State == "Up" && !c.answered {
			c.answered = true // a call adopted with Track: no answer event was seen
		}
		s.finish(c, at, failureCause(c.dialStatus, ev.Cause, c.answered), ev.Type)
	}
}

func (s *Switch) emit(ce controller.ChannelEvent) {
	s.sink.HandleChannelEvent(ce)
	s.stats.delivered.Add(1)
}

func (s *Switch) progress(c *callState, at time.Time, name string) {
	if c.progressed || c.answered {
		return
	}
	c.progressed = true
	s.emit(controller.ChannelEvent{Switch: s.cfg.Name, CallID: c.id, Kind: controller.EventProgress, Name: name, At: at})
}

func (s *Switch) answer(c *callState, at time.Time, name string) {
	if c.answered {
		return
	}
	c.answered, c.answeredAt = true, at
	s.emit(controller.ChannelEvent{Switch: s.cfg.Name, CallID: c.id, Kind: controller.EventAnswer, Name: name, At: at})
	s.accept(c, at)
}

// accept reports originate_accepted once the answered channel is in Stasis
// (FreeSWITCH's BACKGROUND_JOB +OK also follows CHANNEL_ANSWER).
func (s *Switch) accept(c *callState, at time.Time) {
	if c.accepted || !c.answered || !c.stasis {
		return
	}
	c.accepted = true
	s.emit(controller.ChannelEvent{Switch: s.cfg.Name, CallID: c.id, Kind: controller.EventOriginateAccepted,
		Name: evStasisStart, At: at, Detail: "StasisStart"})
}

// hangupFailed hangs up, in the background, a channel whose dial failed
// but which stays in Stasis.
func (s *Switch) hangupFailed(id controller.CallID, cause string) {
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
		defer cancel()
		if err := s.Hangup(ctx, id, cause); err != nil && controller.ErrorCode(err) != controller.ENOTFOUND {
			s.log.Warn("hanging up a failed dial", "call_id", id, "err", err)
		}
	}()
}

// finish delivers the end of a call, as FreeSWITCH's driver does for the
// same scenario: a failed call is originate_failed, hangup_complete,
// destroy; an answered one hangup, hangup_complete, destroy.
func (s *Switch) finish(c *callState, at time.Time, cause, name string) {
	s.calls.remove(c.id)
	base := controller.ChannelEvent{Switch: s.cfg.Name, CallID: c.id, Name: name, At: at, HangupCause: cause}
	created := c.created
	if created.IsZero() || created.After(at) {
		created = at
	}
	done := base
	done.Kind = controller.EventHangupComplete
	done.Duration = int(at.Sub(created) / time.Second)
	if c.answered {
		done.Answered, done.AnsweredAt = true, c.answeredAt
		if !c.answeredAt.IsZero() && !c.answeredAt.After(at) {
			done.Billsec = int(at.Sub(c.answeredAt) / time.Second)
		}
		h := base
		h.Kind = controller.EventHangup
		h.Answered, h.AnsweredAt = done.Answered, done.AnsweredAt
		s.emit(h)
	} else {
		f := base
		f.Kind = controller.EventOriginateFailed
		f.Detail = cause
		if c.dialStatus != "" {
			f.Detail = "Dial " + c.dialStatus
		}
		s.emit(f)
	}
	s.emit(done)
	d := base
	d.Kind = controller.EventDestroy
	s.emit(d)
	c.log.Info("call ended", "cause", cause, "answered", c.answered, "billsec", done.Billsec)
	s.media.ended(c.id, s)
}
