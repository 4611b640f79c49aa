package asterisk

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// callFixture is what a fixture's call did: the channelId, the extension
// dialled and the requests the driver itself makes (originate, hangups).
func callFixture(t *testing.T, name string) (id controller.CallID, exten string, waitFor []int) {
	t.Helper()
	for _, r := range loadFixture(t, name) {
		if r.Kind != "rest_req" {
			continue
		}
		switch {
		case r.Method == "POST" && (r.Path == "/ari/channels" || r.Path == "/ari/channels/create"):
			id = controller.CallID(r.Query["channelId"])
			ep := strings.TrimPrefix(r.Query["endpoint"], "Local/")
			exten, _, _ = strings.Cut(ep, "@")
			waitFor = append(waitFor, r.Seq)
		case r.Method == "DELETE" && id != "" && r.Path == "/ari/channels/"+string(id):
			waitFor = append(waitFor, r.Seq)
		}
	}
	require.NotEmpty(t, id)
	return id, exten, waitFor
}

type outcome struct {
	state    controller.CallState
	cause    string
	answered bool
}

// TestFixtureCalls replays every call fixture through the driver and checks
// the call record the events build — the same record FreeSWITCH's driver
// produces for the scenario (dialplans/SCENARIOS.md).
func TestFixtureCalls(t *testing.T) {
	t.Parallel()
	completed := outcome{controller.CallCompleted, "NORMAL_CLEARING", true}
	failed := func(cause string) outcome { return outcome{controller.CallFailed, cause, false} }
	gather := func(max int, terms string, timeout time.Duration) *controller.GatherRequest {
		return &controller.GatherRequest{Prompt: "silence_stream://1", MinDigits: 1, MaxDigits: max, Tries: 1,
			Timeout: timeout, Terminators: terms}
	}
	long := deadline
	cases := []struct {
		name    string
		gather  *controller.GatherRequest
		digits  string // "" expects GatherTimeout
		hangup  bool   // callgate hangs up the answered call
		want    outcome
		billsec int // -1: not checked
		kinds   []controller.EventKind
	}{
		{name: "03_answered_dtmf1_record", gather: gather(1, "", long), digits: "1", hangup: true, want: completed, billsec: 5},
		{name: "03b_answered_dtmf1_record_audio", gather: gather(1, "", long), digits: "1", hangup: true, want: completed, billsec: -1},
		{name: "03c_record_terminate_on_hash", gather: gather(5, "#", long), digits: "12", hangup: true, want: completed, billsec: -1},
		{name: "04_dtmf2", gather: gather(1, "", long), digits: "2", hangup: true, want: completed, billsec: -1},
		{name: "04b_silence", gather: gather(1, "", time.Millisecond), hangup: true, want: completed, billsec: -1},
		{name: "04c_multidigit", gather: gather(5, "#", long), digits: "12", hangup: true, want: completed, billsec: -1},
		{name: "05_busy", want: failed("USER_BUSY"), billsec: 0,
			kinds: []controller.EventKind{controller.EventOriginateFailed, controller.EventHangupComplete, controller.EventDestroy}},
		{name: "05b_busy_create_dial", want: failed("USER_BUSY"), billsec: 0},
		{name: "05c_busy_cause17", want: failed("USER_BUSY"), billsec: 0},
		{name: "05d_congestion", want: failed("NORMAL_CIRCUIT_CONGESTION"), billsec: 0},
		{name: "06_no_answer", want: failed("NO_ANSWER"), billsec: 0,
			kinds: []controller.EventKind{controller.EventProgress, controller.EventOriginateFailed, controller.EventHangupComplete, controller.EventDestroy}},
		{name: "06b_no_answer_create_dial", want: failed("NO_ANSWER"), billsec: 0},
		{name: "07_rejected", want: failed("CALL_REJECTED"), billsec: 0},
		{name: "07b_rejected_create_dial", want: failed("CALL_REJECTED"), billsec: 0},
		{name: "08_unallocated", want: failed("UNALLOCATED_NUMBER"), billsec: 0},
		{name: "08b_unallocated_create_dial", want: failed("UNALLOCATED_NUMBER"), billsec: 0},
		{name: "09_no_such_extension", want: failed("NO_ROUTE_DESTINATION"), billsec: 0,
			kinds: []controller.EventKind{controller.EventOriginateFailed, controller.EventHangupComplete, controller.EventDestroy}},
		{name: "09b_unregistered_app", want: failed(causeUnregisteredApp), billsec: 0},
		{name: "10_peer_hangup", want: completed, billsec: 2,
			kinds: []controller.EventKind{controller.EventAnswer, controller.EventOriginateAccepted, controller.EventHangup, controller.EventHangupComplete, controller.EventDestroy}},
		{name: "11_ring_then_answer", want: completed, billsec: 3,
			kinds: []controller.EventKind{controller.EventProgress, controller.EventAnswer, controller.EventOriginateAccepted, controller.EventHangup, controller.EventHangupComplete, controller.EventDestroy}},
		{name: "11b_ring_then_answer_create_dial", want: completed, billsec: 3},
		{name: "13_bridge_record", gather: gather(1, "", long), digits: "1", hangup: true, want: completed, billsec: -1},
		{name: "13b_snoop_record", gather: gather(1, "", long), digits: "1", hangup: true, want: completed, billsec: -1},
		{name: "14_send_dtmf_echo", gather: gather(2, "", long), digits: "12", hangup: true, want: completed, billsec: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, exten, waitFor := callFixture(t, tc.name)
			rp := newReplay(t, tc.name, waitFor...)
			s, sk := startReplay(t, rp, nil)
			if tc.name == "09b_unregistered_app" {
				s.watchDelay = func(time.Duration) time.Duration { return 0 }
			}
			ctx := context.Background()
			rec := controller.Call{ID: id, State: controller.CallQueued}
			_, err := controller.Apply(&rec, controller.ChannelEvent{CallID: id, Kind: controller.EventOriginateSent})
			require.NoError(t, err)
			require.NoError(t, s.Originate(ctx, controller.OriginateRequest{CallID: id, To: exten, Timeout: 5 * time.Second}))
			var kinds []controller.EventKind
			if tc.gather != nil || tc.hangup {
				_, k := sk.until(t, &rec, controller.EventAnswer)
				kinds = append(kinds, k...)
			}
			if tc.gather != nil {
				got, err := s.Gather(ctx, id, *tc.gather)
				require.NoError(t, err)
				if tc.digits == "" {
					require.Equal(t, controller.GatherResult{Status: controller.GatherTimeout}, got)
				} else {
					require.Equal(t, controller.GatherResult{Digits: tc.digits, Status: controller.GatherSuccess}, got)
				}
			}
			if tc.hangup {
				require.NoError(t, s.Hangup(ctx, id, "NORMAL_CLEARING"))
			}
			end, k := sk.until(t, &rec, controller.EventDestroy)
			kinds = append(kinds, k...)
			require.Equal(t, tc.want, outcome{rec.State, rec.HangupCause, rec.AnsweredAt != nil}, "events %v", kinds)
			if tc.billsec >= 0 {
				require.Equal(t, tc.billsec, rec.Billsec)
			}
			if tc.kinds != nil {
				require.Equal(t, tc.kinds, kinds)
			}
			require.Equal(t, tc.want.cause, end.HangupCause)
			require.Zero(t, s.Stats().InFlight, "the call is forgotten at its end")
			if tc.name == "10_peer_hangup" {
				err := s.Hangup(ctx, id, "")
				require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "%v", err)
			}
		})
	}
}

// TestFixtureBasics: 01_basics' REST error shapes through the driver.
func TestFixtureBasics(t *testing.T) {
	t.Parallel()
	rp := newReplay(t, "01_basics")
	s, _ := startReplay(t, rp, nil)
	ctx := context.Background()
	chans, err := s.Channels(ctx)
	require.NoError(t, err)
	require.Empty(t, chans)
	err = s.Hangup(ctx, "does-not-exist", "")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "%v", err)
	err = s.Play(ctx, "does-not-exist", "/sounds/hello.wav")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "%v", err)
	st := s.Status()
	require.True(t, st.Connected)
	require.Equal(t, "asterisk", st.Kind)
}

// TestFixtureErrors: 02_errors' refused originates and the duplicate
// channelId (409 → ECONFLICT); none of them is ErrNotSent.
func TestFixtureErrors(t *testing.T) {
	t.Parallel()
	rp := newReplay(t, "02_errors", 12, 14)
	s, sk := startReplay(t, rp, nil)
	ctx := context.Background()
	orig := func(id string) error {
		return s.Originate(ctx, controller.OriginateRequest{CallID: controller.CallID(id), To: "1005", Timeout: 5 * time.Second})
	}
	for i, want := range []string{"Endpoint must be specified", "Application or extension must be specified",
		"Allocation failed", "Invalid endpoint specified"} {
		err := orig("cg02-refused-" + string(rune('a'+i)))
		require.Equal(t, controller.EREFUSED, controller.ErrorCode(err), "%v", err)
		require.NotErrorIs(t, err, controller.ErrNotSent)
		require.Contains(t, err.Error(), want)
	}
	id := controller.CallID("cg02-dup-eb2e9da5-c2c9-49ed-ac9d-77227c7a52b0")
	require.NoError(t, orig(string(id)))
	err := orig(string(id))
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err), "already in flight: %v", err)
	rec := controller.Call{ID: id, State: controller.CallOriginating}
	sk.until(t, &rec, controller.EventAnswer)
	err = orig("cg02-other-id")
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err), "409 from Asterisk: %v", err)
	require.NoError(t, s.Hangup(ctx, id, ""))
	sk.until(t, &rec, controller.EventDestroy)
	require.Equal(t, controller.CallCompleted, rec.State)
	require.Equal(t, "NORMAL_CLEARING", rec.HangupCause)
}

// TestFixtureListLive: 12_list_live's GET /channels lists both Local halves,
// answered.
func TestFixtureListLive(t *testing.T) {
	t.Parallel()
	id, _, waitFor := callFixture(t, "12_list_live")
	rp := newReplay(t, "12_list_live", append(waitFor, 2)...)
	s, sk := startReplay(t, rp, nil)
	ctx := context.Background()
	require.NoError(t, s.Originate(ctx, controller.OriginateRequest{CallID: id, To: "1005", CallerIDName: "CallGate", CallerIDNumber: "5551234"}))
	rec := controller.Call{ID: id, State: controller.CallOriginating}
	sk.until(t, &rec, controller.EventAnswer)
	chans, err := s.Channels(ctx)
	require.NoError(t, err)
	require.Len(t, chans, 2)
	require.Equal(t, string(id), chans[0].UUID)
	require.True(t, chans[0].Answered)
	require.Equal(t, "ACTIVE", chans[0].CallState)
	require.NoError(t, s.Hangup(ctx, id, ""))
	sk.until(t, &rec, controller.EventDestroy)
	require.Equal(t, controller.CallCompleted, rec.State)
}
