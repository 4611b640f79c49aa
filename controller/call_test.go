package controller_test

import (
	"errors"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

func TestCanTransition(t *testing.T) {
	t.Parallel()
	allowed := map[controller.CallState][]controller.CallState{
		controller.CallQueued:      {controller.CallOriginating, controller.CallCanceled, controller.CallBlocked, controller.CallFailed},
		controller.CallOriginating: {controller.CallRinging, controller.CallEarly, controller.CallAnswered, controller.CallFailed},
		controller.CallRinging:     {controller.CallEarly, controller.CallAnswered, controller.CallFailed},
		controller.CallEarly:       {controller.CallAnswered, controller.CallFailed},
		controller.CallAnswered:    {controller.CallCompleted},
	}
	for _, from := range controller.CallStates {
		for _, to := range controller.CallStates {
			want := false
			for _, a := range allowed[from] {
				want = want || a == to
			}
			require.Equal(t, want, controller.CanTransition(from, to), "%s → %s", from, to)
		}
	}
	require.False(t, controller.CanTransition(controller.CallQueued, "bogus"))
}

func ev(kind controller.EventKind, seq uint64) controller.ChannelEvent {
	return controller.ChannelEvent{Kind: kind, Sequence: seq, At: time.Unix(1795248949, 0).Add(time.Duration(seq) * time.Millisecond)}
}

func TestApply(t *testing.T) {
	t.Parallel()
	hangup := func(cause string, billsec int, answered bool) controller.ChannelEvent {
		e := ev(controller.EventHangupComplete, 90)
		e.HangupCause, e.Billsec, e.Duration, e.Answered = cause, billsec, billsec+1, answered
		return e
	}
	failed := ev(controller.EventOriginateFailed, 95)
	failed.HangupCause = "USER_BUSY"
	tests := []struct {
		name     string
		events   []controller.ChannelEvent
		want     controller.CallState
		cause    string
		billsec  int
		answered bool
		illegal  bool
	}{
		{name: "answered then hung up",
			events: []controller.ChannelEvent{ev(controller.EventOriginateSent, 0), ev(controller.EventProgress, 1), ev(controller.EventAnswer, 2), hangup("NORMAL_CLEARING", 4, true)},
			want:   controller.CallCompleted, cause: "NORMAL_CLEARING", billsec: 4, answered: true},
		{name: "busy: hangup before the job result",
			events: []controller.ChannelEvent{ev(controller.EventOriginateSent, 0), hangup("USER_BUSY", 0, false), failed},
			want:   controller.CallFailed, cause: "USER_BUSY"},
		{name: "hangup complete overtakes the answer",
			events: []controller.ChannelEvent{ev(controller.EventOriginateSent, 0), hangup("NORMAL_CLEARING", 2, true), ev(controller.EventAnswer, 2)},
			want:   controller.CallCompleted, cause: "NORMAL_CLEARING", billsec: 2, answered: true},
		{name: "late progress never moves an answered call back",
			events: []controller.ChannelEvent{ev(controller.EventOriginateSent, 0), ev(controller.EventAnswer, 5), ev(controller.EventProgress, 3)},
			want:   controller.CallAnswered, answered: true},
		{name: "ringing without being sent is illegal",
			events: []controller.ChannelEvent{ev(controller.EventProgress, 1)},
			want:   controller.CallQueued, illegal: true},
		{name: "reconciled after the link dropped mid-call",
			events: []controller.ChannelEvent{ev(controller.EventOriginateSent, 0), ev(controller.EventAnswer, 2), {Kind: controller.EventReconciledGone, Answered: true}},
			want:   controller.CallCompleted, answered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := controller.Call{ID: "c1", State: controller.CallQueued}
			var sawIllegal bool
			for _, e := range tt.events {
				if _, err := controller.Apply(&c, e); err != nil {
					require.True(t, errors.Is(err, controller.ErrIllegalTransition), err)
					sawIllegal = true
				}
			}
			require.Equal(t, tt.illegal, sawIllegal)
			require.Equal(t, tt.want, c.State)
			require.Equal(t, tt.cause, c.HangupCause)
			require.Equal(t, tt.billsec, c.Billsec)
			require.Equal(t, tt.answered, c.AnsweredAt != nil)
			require.Equal(t, c.State.Terminal(), c.EndedAt != nil)
		})
	}
}

func TestMaskNumber(t *testing.T) {
	t.Parallel()
	require.Equal(t, "****4567", controller.MaskNumber("+15551234567"))
	require.Equal(t, "****", controller.MaskNumber("123"))
}

func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	err := controller.FieldError("to", "is required")
	require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
	require.Equal(t, "to", controller.ErrorField(err))
	require.Equal(t, controller.EINTERNAL, controller.ErrorCode(errors.New("boom")))
	require.Equal(t, "internal error", controller.ErrorMessage(errors.New("secret detail")))
	require.Equal(t, "", controller.ErrorCode(nil))
}
