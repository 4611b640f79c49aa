package switchsim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A SIP call in the simulator has no real SIP peer, so its variables cannot
// match a capture value for value. TestSofiaShapeMatchesCapture checks the
// shape instead, against the originated leg of transcript 18 (a real
// sofia/external call, answered, parked, killed): the same events in the
// same order, the same non-variable headers in the same order, and the
// variables they share in the same relative order.
func TestSofiaShapeMatchesCapture(t *testing.T) {
	t.Parallel()
	recs := loadTranscript(t, "18-sip-answered-echo")
	const captured = "sofia/external/9196%40127.0.0.1%3A5060"
	var want []wireFrame
	for _, f := range recvFrames(t, recs) {
		if f.isEvent() && f.get("Content-Type") == "text/event-plain" && rawField(f, "Channel-Name") == captured {
			want = append(want, f)
		}
	}
	require.Len(t, want, 11)

	s := newSim(t, Config{TimeScale: 0.001})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	const uuid = "1ef971cb-fbce-495f-9854-8f3adc5a526d"
	c.command("bgapi originate {origination_uuid=" + uuid + ",sip_auth_username=1000,sip_auth_password=1234," +
		"originate_timeout=5}sofia/external/1005@127.0.0.1:5060 &park()")
	var got []wireFrame
	for len(got) < 11 {
		f := c.event()
		if f.field("Unique-ID") != uuid {
			continue
		}
		got = append(got, f)
		if f.eventName() == "CHANNEL_PARK" {
			require.Equal(t, "+OK\n", c.api("uuid_kill "+uuid))
		}
	}
	for i := range want {
		wn, gn := rawField(want[i], "Event-Name"), rawField(got[i], "Event-Name")
		require.Equal(t, wn, gn, "event %d", i)
		wh, wv := splitNames(want[i])
		gh, gv := splitNames(got[i])
		require.Equal(t, wh, gh, "non-variable headers of %s", wn)
		shared := map[string]bool{}
		for _, v := range wv {
			shared[v] = true
		}
		var inOrder []string
		for _, v := range gv {
			if shared[v] {
				inOrder = append(inOrder, v)
			}
		}
		require.Equal(t, subsequence(wv, inOrder), inOrder, "shared variables of %s in FreeSWITCH's order", wn)
		require.GreaterOrEqual(t, len(inOrder), len(gv)*2/3, "most variables of %s exist in FreeSWITCH too", wn)
	}
	hc := got[9]
	require.Equal(t, "CHANNEL_HANGUP_COMPLETE", hc.eventName())
	require.Equal(t, "200", hc.field("variable_sip_term_status"))
	require.Equal(t, "send_bye", hc.field("variable_sip_hangup_disposition"))
}

func rawField(f wireFrame, name string) string {
	hs, _ := eventHeaders(f)
	for _, h := range hs {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// splitNames separates an event's header names from its variable names.
func splitNames(f wireFrame) (headers, vars []string) {
	hs, _ := eventHeaders(f)
	for _, h := range hs {
		if strings.HasPrefix(h.Name, "variable_") {
			vars = append(vars, h.Name)
		} else {
			headers = append(headers, h.Name)
		}
	}
	return headers, vars
}

// subsequence returns the elements of all that are in some, in all's order.
func subsequence(all, some []string) []string {
	in := map[string]bool{}
	for _, s := range some {
		in[s] = true
	}
	var out []string
	for _, a := range all {
		if in[a] {
			out = append(out, a)
		}
	}
	return out
}
