package switchsim

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The caller in these tests is the -a leg of a call to 1005 (answers and
// stays), parked and answered like callgate's IVR leaves it.

func isBridgeComplete(uuid string) func(wireFrame) bool {
	return func(f wireFrame) bool {
		return isEvent("CHANNEL_EXECUTE_COMPLETE", uuid)(f) && f.field("Application") == "bridge"
	}
}

// bridgeLegs finds the channels a bridge created in evs: the leg bridged
// to caller (Other-Leg-Unique-ID) and, for loopback, its -b leg.
func bridgeLegs(t *testing.T, evs []wireFrame, caller string) (peer string, creates []wireFrame) {
	t.Helper()
	for _, e := range evs {
		if e.eventName() != "CHANNEL_CREATE" || e.field("Unique-ID") == caller {
			continue
		}
		creates = append(creates, e)
		if e.field("Other-Leg-Unique-ID") == caller {
			peer = e.field("Unique-ID")
		}
	}
	require.NotEmpty(t, peer, "no CHANNEL_CREATE with Other-Leg-Unique-ID %s", caller)
	return peer, creates
}

func TestBridgeAnsweredUntilCalleeHangsUp(t *testing.T) {
	t.Parallel()
	s, clock, c, uuid := answeredCall(t, "loopback/1005")
	appUUID := newUUID()
	require.Equal(t, "+OK", c.sendmsg(uuid, "bridge", "loopback/1006/callgate-test", "Event-UUID: "+appUUID).get("Reply-Text"))

	evs := c.collectUntil("", isEvent("CHANNEL_BRIDGE", uuid))
	for _, e := range evs {
		require.False(t, isBridgeComplete(uuid)(e), "bridge completed before the callee hung up")
	}
	exec := evs[0]
	for _, e := range evs {
		if isEvent("CHANNEL_EXECUTE", uuid)(e) {
			exec = e
			break
		}
	}
	require.Equal(t, "bridge", exec.field("Application"))
	require.Equal(t, appUUID, exec.field("Application-UUID"))

	peer, creates := bridgeLegs(t, evs, uuid)
	require.Len(t, creates, 2, "a loopback bridge creates two channels")
	var peerCreate wireFrame
	for _, e := range creates {
		if e.field("Unique-ID") == peer {
			peerCreate = e
		}
	}
	require.Equal(t, "loopback/1006-a", peerCreate.field("Channel-Name"))
	require.Equal(t, "originator", peerCreate.field("Other-Type"))
	require.Equal(t, uuid, peerCreate.field("Channel-Call-UUID"))
	require.Equal(t, uuid, peerCreate.field("variable_signal_bond"))
	require.Equal(t, uuid, peerCreate.field("variable_originating_leg_uuid"))
	require.Equal(t, "0", peerCreate.field("Other-Leg-Channel-Created-Time"))

	br := evs[len(evs)-1]
	require.Equal(t, uuid, br.field("Bridge-A-Unique-ID"))
	require.Equal(t, peer, br.field("Bridge-B-Unique-ID"))
	require.Equal(t, "originatee", br.field("Other-Type"))
	require.Equal(t, peer, br.field("Other-Leg-Unique-ID"))
	require.Equal(t, "SUCCESS", br.field("variable_originate_disposition"))
	require.Equal(t, "SUCCESS", br.field("variable_DIALSTATUS"))
	require.Equal(t, peer, br.field("variable_originate_signal_bond"))
	require.NotEqual(t, "0", br.field("Caller-Channel-Bridged-Time"))
	// The Bridge-* headers come before the channel data.
	fs := br.fields()
	require.Equal(t, "Event-Sequence", fs[12].Name)
	require.Equal(t, "Bridge-A-Unique-ID", fs[13].Name)
	require.Equal(t, "Bridge-B-Unique-ID", fs[14].Name)
	require.Equal(t, "Channel-State", fs[15].Name)

	clock.Advance(2 * time.Second)
	evs = c.collectUntil("", isBridgeComplete(uuid))
	var order []string
	for _, e := range evs {
		switch {
		case isEvent("CHANNEL_HANGUP", peer)(e):
			order = append(order, "peer hangup")
			require.Equal(t, "NORMAL_CLEARING", e.field("Hangup-Cause"))
		case isEvent("CHANNEL_UNBRIDGE", uuid)(e):
			order = append(order, "unbridge")
			require.Equal(t, peer, e.field("Bridge-B-Unique-ID"))
		case isEvent("CHANNEL_HANGUP", uuid)(e):
			t.Fatal("the caller hung up")
		}
	}
	require.Equal(t, []string{"peer hangup", "unbridge"}, order)
	done := evs[len(evs)-1]
	require.Equal(t, appUUID, done.field("Application-UUID"))
	require.Equal(t, "_none_", done.field("Application-Response"))
	require.Equal(t, "SUCCESS", done.field("variable_originate_disposition"))
	require.Equal(t, "NORMAL_CLEARING", done.field("variable_last_bridge_hangup_cause"))
	require.Equal(t, "NORMAL_CLEARING", done.field("variable_bridge_hangup_cause"))
	require.Equal(t, "answered", done.field("Answer-State"))
	started, err := strconv.ParseInt(exec.field("Event-Date-Timestamp"), 10, 64)
	require.NoError(t, err)
	require.Equal(t, strconv.FormatInt(started+2_000_000, 10), done.field("Event-Date-Timestamp"),
		"the bridge ends when the callee hangs up, 2 s in")

	// The caller stays up and its flow goes on.
	info, ok := s.Channel(uuid)
	require.True(t, ok)
	require.True(t, info.Answered)
	require.Equal(t, "NORMAL_CLEARING", info.Vars["last_bridge_hangup_cause"])
	playUUID := newUUID()
	c.sendmsg(uuid, "playback", "silence_stream://500", "Event-UUID: "+playUUID)
	clock.Advance(time.Second)
	played := c.waitEvent(func(f wireFrame) bool {
		return isEvent("CHANNEL_EXECUTE_COMPLETE", uuid)(f) && f.field("Application-UUID") == playUUID
	})
	require.Equal(t, "FILE PLAYED", played.field("Application-Response"))
	require.Eventually(t, func() bool { return s.ChannelCount() == 2 }, 5*time.Second, 5*time.Millisecond)
}

func TestBridgeCalleeFails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dial, setTimeout string
		wait                   time.Duration
		cause, dialstatus      string
		legs                   int // channels the bridge creates
	}{
		{"busy", "loopback/1003/callgate-test", "", 0, "USER_BUSY", "BUSY", 2},
		{"reject", "loopback/1007", "", 0, "CALL_REJECTED", "DONTCALL", 2},
		{"unallocated", "sofia/gateway/pbx/1008", "", 0, "UNALLOCATED_NUMBER", "UNALLOCATED_NUMBER", 1},
		{"sip busy", "sofia/external/1003@10.0.0.1", "", 0, "USER_BUSY", "BUSY", 1},
		{"no answer", "loopback/1004", "call_timeout=5", 5 * time.Second, "NO_ANSWER", "NOANSWER", 2},
		{"no answer dial timeout", "{originate_timeout=3}sofia/gateway/pbx/1004", "", 3 * time.Second, "NO_ANSWER", "NOANSWER", 1},
		{"error endpoint", "error/USER_BUSY", "", 0, "USER_BUSY", "BUSY", 0},
		{"unknown endpoint", "user/1000", "", 0, "CHAN_NOT_IMPLEMENTED", "CHAN_NOT_IMPLEMENTED", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, clock, c, uuid := answeredCall(t, "loopback/1005")
			if tc.setTimeout != "" {
				c.sendmsg(uuid, "set", tc.setTimeout)
			}
			appUUID := newUUID()
			c.sendmsg(uuid, "bridge", tc.dial, "Event-UUID: "+appUUID)
			exec := c.waitEvent(func(f wireFrame) bool {
				return isEvent("CHANNEL_EXECUTE", uuid)(f) && f.field("Application-UUID") == appUUID
			})
			if tc.wait > 0 {
				clock.Advance(tc.wait - time.Millisecond)
				clock.Advance(time.Millisecond)
			}
			evs := c.collectUntil("", isBridgeComplete(uuid))
			done := evs[len(evs)-1]
			require.Equal(t, appUUID, done.field("Application-UUID"))
			require.Equal(t, tc.cause, done.field("variable_originate_disposition"))
			require.Equal(t, tc.dialstatus, done.field("variable_DIALSTATUS"))
			require.Equal(t, tc.cause, done.field("variable_originate_failed_cause"))
			execAt := exec.field("Event-Date-Timestamp")
			if tc.wait == 0 {
				require.Equal(t, execAt, done.field("Event-Date-Timestamp"), "fails at once")
			}
			var created, hungup []string
			for _, e := range evs {
				require.NotEqual(t, "CHANNEL_BRIDGE", e.eventName())
				if e.field("Unique-ID") == uuid {
					require.NotEqual(t, "CHANNEL_HANGUP", e.eventName())
					continue
				}
				switch e.eventName() {
				case "CHANNEL_CREATE":
					created = append(created, e.field("Unique-ID"))
				case "CHANNEL_HANGUP":
					hungup = append(hungup, e.field("Unique-ID"))
					require.Equal(t, tc.cause, e.field("Hangup-Cause"))
				}
			}
			require.Len(t, created, tc.legs)
			if tc.legs > 0 {
				peer, _ := bridgeLegs(t, evs, uuid)
				require.Contains(t, hungup, peer, "the new leg hangs up before the bridge completes")
				require.Equal(t, peer+";"+tc.cause, done.field("variable_originate_causes"))
				require.Equal(t, tc.cause, done.field("variable_last_bridge_hangup_cause"))
			}
			info, ok := s.Channel(uuid)
			require.True(t, ok, "the caller stays up")
			require.True(t, info.Answered)
			require.Eventually(t, func() bool { return s.ChannelCount() == 2 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}

func TestBridgeCallerHangsUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dial, peerCause string
		bridged               bool
	}{
		{"while bridged", "loopback/1005", "NORMAL_CLEARING", true},
		{"while ringing", "loopback/1004", "ORIGINATOR_CANCEL", false},
		{"sip while ringing", "sofia/gateway/pbx/1004", "ORIGINATOR_CANCEL", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, c, uuid := answeredCall(t, "loopback/1005")
			appUUID := newUUID()
			c.sendmsg(uuid, "bridge", tc.dial, "Event-UUID: "+appUUID)
			var evs []wireFrame
			if tc.bridged {
				evs = c.collectUntil("", isEvent("CHANNEL_BRIDGE", uuid))
			} else {
				evs = c.collectUntil("", func(f wireFrame) bool {
					return f.eventName() == "CHANNEL_PROGRESS" && f.field("Other-Leg-Unique-ID") == uuid
				})
			}
			peer, _ := bridgeLegs(t, evs, uuid)
			require.Equal(t, "+OK\n", c.api("uuid_kill "+uuid))

			evs = c.collectUntil("", isEvent("CHANNEL_DESTROY", uuid))
			var order []string
			var done wireFrame
			for _, e := range evs {
				switch {
				case isEvent("CHANNEL_HANGUP", uuid)(e):
					order = append(order, "caller hangup")
				case isEvent("CHANNEL_HANGUP", peer)(e):
					order = append(order, "peer hangup")
					require.Equal(t, tc.peerCause, e.field("Hangup-Cause"))
					require.Equal(t, "NORMAL_CLEARING", e.field("variable_last_bridge_hangup_cause"))
				case isEvent("CHANNEL_UNBRIDGE", uuid)(e):
					order = append(order, "unbridge")
				case isBridgeComplete(uuid)(e):
					order = append(order, "complete")
					done = e
				}
			}
			if tc.bridged {
				require.Equal(t, []string{"caller hangup", "peer hangup", "unbridge", "complete"}, order)
				require.Equal(t, "SUCCESS", done.field("variable_originate_disposition"))
			} else {
				// As in capture 19: caller hangup, the new leg cancelled, then
				// the bridge completes with ORIGINATOR_CANCEL.
				require.Equal(t, []string{"caller hangup", "peer hangup", "complete"}, order)
				require.Equal(t, "ORIGINATOR_CANCEL", done.field("variable_originate_disposition"))
				require.Equal(t, "CANCEL", done.field("variable_DIALSTATUS"))
			}
			require.Equal(t, appUUID, done.field("Application-UUID"))
			require.Eventually(t, func() bool { return s.ChannelCount() == 0 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}

func TestBridgeSIPAnswered(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1005")
	c.sendmsg(uuid, "bridge", "{origination_caller_id_number=5551234}sofia/gateway/pbx/1006")
	evs := c.collectUntil("", isEvent("CHANNEL_BRIDGE", uuid))
	peer, creates := bridgeLegs(t, evs, uuid)
	require.Len(t, creates, 1)
	create := creates[0]
	require.Equal(t, "sofia/external/1006", create.field("Channel-Name"))
	require.Equal(t, "pbx", create.field("variable_sip_gateway_name"))
	require.Equal(t, "5551234", create.field("Caller-Caller-ID-Number"))
	require.Equal(t, uuid, create.field("variable_originator"))
	require.Equal(t, "answered", evs[len(evs)-1].field("Answer-State"))

	clock.Advance(2 * time.Second)
	done := c.waitEvent(isBridgeComplete(uuid))
	require.Equal(t, "SUCCESS", done.field("variable_originate_disposition"))
	require.Equal(t, "NORMAL_CLEARING", done.field("variable_last_bridge_hangup_cause"))
	require.Equal(t, "sip:200", done.field("variable_last_bridge_proto_specific_hangup_cause"))
	require.Equal(t, peer, done.field("variable_last_bridge_to"))
}

func TestBridgeHangupAfterBridge(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1005")
	c.sendmsg(uuid, "set", "hangup_after_bridge=true")
	c.sendmsg(uuid, "bridge", "loopback/1006")
	c.waitEvent(isEvent("CHANNEL_BRIDGE", uuid))
	clock.Advance(2 * time.Second)
	evs := c.collectUntil(uuid, isBridgeComplete(uuid))
	require.Equal(t, []string{"CHANNEL_UNBRIDGE", "CHANNEL_HANGUP", "CHANNEL_EXECUTE_COMPLETE"}, names(evs[len(evs)-3:]))
	require.Equal(t, "NORMAL_CLEARING", evs[len(evs)-2].field("Hangup-Cause"))
}

func TestBridgeSessionLimit(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{MaxSessions: 3})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	c.originate(uuid, "loopback/1005")
	c.waitEvent(isEvent("CHANNEL_PARK", uuid))

	// A loopback bridge needs two more sessions: refused like an originate.
	c.sendmsg(uuid, "bridge", "loopback/1006")
	evs := c.collectUntil("", isBridgeComplete(uuid))
	for _, e := range evs {
		require.NotEqual(t, "CHANNEL_CREATE", e.eventName())
	}
	done := evs[len(evs)-1]
	require.Equal(t, "DESTINATION_OUT_OF_ORDER", done.field("variable_originate_disposition"))
	require.Equal(t, "INVALIDARGS", done.field("variable_DIALSTATUS"))

	// A SIP leg needs one and fits.
	c.sendmsg(uuid, "bridge", "sofia/gateway/pbx/1005")
	c.waitEvent(isEvent("CHANNEL_BRIDGE", uuid))
	require.Equal(t, 3, s.ChannelCount())
	require.True(t, strings.HasPrefix(s.Channels()[2].Name, "sofia/external/"))
}
