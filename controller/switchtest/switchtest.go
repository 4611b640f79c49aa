// Package switchtest is the one suite every Switch implementation must pass.
// A driver's test connects it to a switch — switchsim in CI, a real
// FreeSWITCH or Asterisk when the environment names one — and hands it to
// Run, which places the calls of the scenario table (the last four digits of
// the number choose the callee's behaviour, see dialplans/SCENARIOS.md),
// runs the IVR steps on them and folds every delivered event into a call
// record with controller.Apply. Both drivers must produce the same records
// for the same scenario: the expectations are not per driver.
package switchtest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/audio"
)

// Driver is a switch that can place calls and run IVR steps.
type Driver interface {
	controller.Switch
	controller.Media
}

// Target is one driver connected to one switch.
type Target struct {
	// Switch is the driver, started and connected.
	Switch Driver
	// Sink must be the EventSink the driver was built with.
	Sink *Sink
	// Number returns a number whose last four digits are suffix, in the
	// form the driver's dial template expects.
	Number func(suffix string) string
	// Destination returns a dial string reaching the callee with suffix,
	// for transfers.
	Destination func(suffix string) string
	// RecordDir is a local directory recordings may be written to (the
	// switch writes there, or the driver copies them there).
	RecordDir string
	// DropLink, when set, cuts the driver's connection to the switch (a
	// fault only a simulator can inject).
	DropLink func()
}

// Sink is a controller.EventSink that routes each call's events to its
// waiter. Build the driver with it (NewSink) before the Target.
type Sink struct {
	mu        sync.Mutex
	calls     map[controller.CallID]chan controller.ChannelEvent
	connected chan string
}

// NewSink returns an empty Sink.
func NewSink() *Sink {
	return &Sink{calls: map[controller.CallID]chan controller.ChannelEvent{}, connected: make(chan string, 64)}
}

var _ controller.EventSink = (*Sink)(nil)

func (s *Sink) events(id controller.CallID) chan controller.ChannelEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.calls[id]
	if !ok {
		ch = make(chan controller.ChannelEvent, 1024)
		s.calls[id] = ch
	}
	return ch
}

// HandleChannelEvent implements controller.EventSink.
func (s *Sink) HandleChannelEvent(ev controller.ChannelEvent) { s.events(ev.CallID) <- ev }

// SwitchConnected implements controller.EventSink.
func (s *Sink) SwitchConnected(name string) {
	select {
	case s.connected <- name:
	default:
	}
}

// WaitConnected waits for the next (re)connect.
func (s *Sink) WaitConnected(t testing.TB) {
	t.Helper()
	select {
	case <-s.connected:
	case <-time.After(wait):
		t.Fatal("the driver did not (re)connect")
	}
}

// wait bounds every wait for an event: a deadline, not a measurement.
const wait = 30 * time.Second

// call is one placed call and its record so far.
type call struct {
	t      *testing.T
	tg     *Target
	rec    controller.Call
	events chan controller.ChannelEvent
	seen   []controller.ChannelEvent
}

func place(t *testing.T, tg *Target, suffix string, timeout time.Duration) *call {
	t.Helper()
	id := controller.CallID(uuid.NewString())
	c := &call{t: t, tg: tg, events: tg.Sink.events(id),
		rec: controller.Call{ID: id, State: controller.CallQueued, To: tg.Number(suffix)}}
	c.apply(controller.ChannelEvent{CallID: id, Kind: controller.EventOriginateSent, At: time.Now()})
	require.NoError(t, tg.Switch.Originate(context.Background(), controller.OriginateRequest{
		CallID: id, To: c.rec.To, CallerIDNumber: "+12125550100", Timeout: timeout}))
	return c
}

func (c *call) apply(ev controller.ChannelEvent) {
	c.t.Helper()
	c.seen = append(c.seen, ev)
	_, err := controller.Apply(&c.rec, ev)
	require.NoError(c.t, err, "event %s", ev.Kind)
}

// until folds events into the record until one of kind arrives and
// returns it.
func (c *call) until(kind controller.EventKind) controller.ChannelEvent {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev := <-c.events:
			c.apply(ev)
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			c.t.Fatalf("call %s: no %s event (saw %v)", c.rec.ID, kind, kinds(c.seen))
		}
	}
}

// end folds events until the call's channel is destroyed.
func (c *call) end() controller.Call {
	c.t.Helper()
	c.until(controller.EventDestroy)
	return c.rec
}

func kinds(evs []controller.ChannelEvent) []controller.EventKind {
	out := make([]controller.EventKind, len(evs))
	for i, e := range evs {
		out[i] = e.Kind
	}
	return out
}

// record is the part of a call record both drivers must agree on.
type record struct {
	State    controller.CallState
	Cause    string
	Answered bool
}

func recordOf(c controller.Call) record {
	return record{State: c.State, Cause: c.HangupCause, Answered: c.AnsweredAt != nil}
}

// consent is the flows' consent step, as a driver sees it.
func consent(prompt string) controller.GatherRequest {
	return controller.GatherRequest{Prompt: prompt, InvalidPrompt: "silence_stream://200",
		MinDigits: 1, MaxDigits: 1, Tries: 1, Timeout: 3 * time.Second, Terminators: "#", Regex: "^[12]$"}
}

// Run runs the suite against the target newTarget connects. Each subtest
// gets its own target.
func Run(t *testing.T, newTarget func(t *testing.T) *Target) {
	t.Run("outcomes", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		for _, tc := range []struct {
			name, suffix string
			timeout      time.Duration
			want         record
		}{
			{"answered then peer hangs up", "1006", 10 * time.Second, record{controller.CallCompleted, "NORMAL_CLEARING", true}},
			{"ring then answer", "1009", 10 * time.Second, record{controller.CallCompleted, "NORMAL_CLEARING", true}},
			{"busy", "1003", 10 * time.Second, record{controller.CallFailed, "USER_BUSY", false}},
			{"no answer", "1004", 2 * time.Second, record{controller.CallFailed, "NO_ANSWER", false}},
			{"rejected", "1007", 10 * time.Second, record{controller.CallFailed, "CALL_REJECTED", false}},
			{"unallocated", "1008", 10 * time.Second, record{controller.CallFailed, "UNALLOCATED_NUMBER", false}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := place(t, tg, tc.suffix, tc.timeout)
				got := c.end()
				require.Equal(t, tc.want, recordOf(got), "events %v", kinds(c.seen))
				if tc.want.Answered {
					require.Positive(t, got.Billsec, "an answered call reports billsec")
					require.GreaterOrEqual(t, got.Duration, got.Billsec)
				}
				if tc.suffix == "1009" {
					require.Contains(t, kinds(c.seen), controller.EventProgress, "ringing is reported")
				}
			})
		}
	})

	t.Run("consent", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		for _, tc := range []struct {
			name, suffix string
			want         controller.GatherResult
		}{
			{"press 1", "1001", controller.GatherResult{Digits: "1", Status: controller.GatherSuccess}},
			{"press 2", "1002", controller.GatherResult{Digits: "2", Status: controller.GatherSuccess}},
			{"no key", "1005", controller.GatherResult{Status: controller.GatherTimeout}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := place(t, tg, tc.suffix, 10*time.Second)
				c.until(controller.EventAnswer)
				got, err := tg.Switch.Gather(context.Background(), c.rec.ID, consent("tone_stream://%(500,0,440)"))
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				require.NoError(t, tg.Switch.Hangup(context.Background(), c.rec.ID, "NORMAL_CLEARING"))
				require.Equal(t, record{controller.CallCompleted, "NORMAL_CLEARING", true}, recordOf(c.end()))
			})
		}
		t.Run("hang-up mid-prompt", func(t *testing.T) {
			t.Parallel()
			c := place(t, tg, "1010", 10*time.Second)
			c.until(controller.EventAnswer)
			_, err := tg.Switch.Gather(context.Background(), c.rec.ID, consent("tone_stream://%(10000,0,440)"))
			require.ErrorIs(t, err, controller.ErrHungUp)
			require.Equal(t, record{controller.CallCompleted, "NORMAL_CLEARING", true}, recordOf(c.end()))
			err = tg.Switch.Play(context.Background(), c.rec.ID, "silence_stream://100")
			require.Error(t, err, "no step runs on an ended call")
		})
	})

	t.Run("recording", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		ctx := context.Background()
		c := place(t, tg, "1001", 10*time.Second)
		c.until(controller.EventAnswer)
		got, err := tg.Switch.Gather(ctx, c.rec.ID, consent("tone_stream://%(500,0,440)"))
		require.NoError(t, err)
		require.Equal(t, "1", got.Digits)
		path := tg.RecordDir + "/" + string(c.rec.ID) + ".wav"
		require.NoError(t, tg.Switch.Record(ctx, c.rec.ID, controller.RecordStart, path))
		require.Equal(t, path, c.until(controller.EventRecordStart).RecordPath)
		require.NoError(t, tg.Switch.Play(ctx, c.rec.ID, "tone_stream://%(1000,0,440)"))
		require.NoError(t, tg.Switch.Record(ctx, c.rec.ID, controller.RecordMask, path))
		require.NoError(t, tg.Switch.Play(ctx, c.rec.ID, "tone_stream://%(500,0,440)"))
		require.NoError(t, tg.Switch.Record(ctx, c.rec.ID, controller.RecordUnmask, path))
		require.NoError(t, tg.Switch.Record(ctx, c.rec.ID, controller.RecordStop, path))
		stop := c.until(controller.EventRecordStop)
		require.Equal(t, path, stop.RecordPath)
		f, err := audio.ParseWAVFile(path)
		require.NoError(t, err, "the finished recording is a WAV file at the path asked for")
		require.Equal(t, 2, f.Channels, "both directions, one per channel")
		require.NoError(t, tg.Switch.Hangup(ctx, c.rec.ID, "NORMAL_CLEARING"))
		require.Equal(t, record{controller.CallCompleted, "NORMAL_CLEARING", true}, recordOf(c.end()))
		require.NoError(t, os.Remove(path))
	})

	t.Run("transfer", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		ctx := context.Background()
		c := place(t, tg, "1005", 10*time.Second) // stays up until hung up
		c.until(controller.EventAnswer)
		// 1006 answers and hangs up 2 s later: the bridge ends, our leg stays.
		got, err := tg.Switch.Transfer(ctx, c.rec.ID, tg.Destination("1006"))
		require.NoError(t, err)
		require.Equal(t, controller.TransferResult{Bridged: true, HangupCause: "NORMAL_CLEARING"}, got)
		got, err = tg.Switch.Transfer(ctx, c.rec.ID, tg.Destination("1003"))
		require.NoError(t, err)
		require.Equal(t, controller.TransferResult{Bridged: false, HangupCause: "USER_BUSY"}, got)
		require.NoError(t, tg.Switch.Play(ctx, c.rec.ID, "silence_stream://100"), "our leg is still up")
		require.NoError(t, tg.Switch.Hangup(ctx, c.rec.ID, "NORMAL_CLEARING"))
		require.Equal(t, record{controller.CallCompleted, "NORMAL_CLEARING", true}, recordOf(c.end()))
	})

	t.Run("link drop and reconcile", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t)
		if tg.DropLink == nil {
			t.Skip("the target cannot cut its link (a real switch)")
		}
		ctx := context.Background()
		c := place(t, tg, "1005", 10*time.Second) // stays up until hung up
		c.until(controller.EventAnswer)
		tg.DropLink()
		tg.Sink.WaitConnected(t)
		var listed bool
		chans, err := tg.Switch.Channels(ctx)
		require.NoError(t, err)
		for _, ch := range chans {
			if ch.UUID == string(c.rec.ID) {
				listed = true
				require.True(t, ch.Answered)
			}
		}
		require.True(t, listed, "the live call is listed after the reconnect")
		tg.Switch.Track(c.rec.ID)
		require.NoError(t, tg.Switch.Hangup(ctx, c.rec.ID, "NORMAL_CLEARING"))
		got := c.end()
		require.Equal(t, record{controller.CallCompleted, "NORMAL_CLEARING", true}, recordOf(got),
			"the call's end is still delivered after the reconnect")
		err = tg.Switch.Hangup(ctx, c.rec.ID, "NORMAL_CLEARING")
		require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "%v", err)
		require.False(t, errors.Is(err, controller.ErrNotSent))
	})
}
