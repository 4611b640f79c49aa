package switchsim

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScenarioFor(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"1001": "press1", "+15551231001": "press1", "0044 20 7946 1003": "busy", "861391234561004": "noanswer",
		"1005": "silence", "1006": "hangup2s", "1007": "reject", "1008": "unallocated", "1009": "ringthenanswer",
		"99991010": "hangup-mid-prompt", "1011": "default", "001": "default", "": "default", "9196": "default",
	}
	for number, want := range cases {
		require.Equal(t, want, ScenarioFor(number).Name, number)
	}
	all := Scenarios()
	require.Len(t, all, 11)
	all[0].Name = "changed"
	require.Equal(t, "press1", Scenarios()[0].Name, "Scenarios returns a copy")
}

// TestScenarioOutcomes originates every scenario on both endpoint kinds and
// checks the originate result, answer, hangup cause and billsec, on a
// manual clock so durations are exact.
func TestScenarioOutcomes(t *testing.T) {
	t.Parallel()
	type outcome struct {
		result   string // BACKGROUND_JOB body
		answered bool
		progress bool
		cause    string
		billsec  string
		sip      string // sip_term_status for SIP calls
		after    time.Duration
	}
	cases := map[string]outcome{
		"1001": {"+OK", true, false, "NORMAL_CLEARING", "21", "200", 30 * time.Second},
		"1002": {"+OK", true, false, "NORMAL_CLEARING", "21", "200", 30 * time.Second},
		"1003": {"-ERR USER_BUSY", false, false, "USER_BUSY", "0", "486", time.Second},
		"1004": {"-ERR NO_ANSWER", false, true, "NO_ANSWER", "0", "487", 61 * time.Second},
		"1006": {"+OK", true, false, "NORMAL_CLEARING", "2", "200", 5 * time.Second},
		"1007": {"-ERR CALL_REJECTED", false, false, "CALL_REJECTED", "0", "603", time.Second},
		"1008": {"-ERR UNALLOCATED_NUMBER", false, false, "UNALLOCATED_NUMBER", "0", "404", time.Second},
		"1009": {"+OK", true, true, "NORMAL_CLEARING", "3", "200", 5 * time.Second},
		"1010": {"+OK", true, false, "NORMAL_CLEARING", "1", "200", 2 * time.Second},
		"5555": {"+OK", true, false, "NORMAL_CLEARING", "1", "200", 2 * time.Second},
	}
	for suffix, want := range cases {
		for _, endpoint := range []string{"loopback/555" + suffix + "/callgate-test", "sofia/gateway/carrier/+1555000" + suffix} {
			t.Run(endpoint, func(t *testing.T) {
				t.Parallel()
				s, clock := manualSim(t, Config{})
				c := dial(t, s, "ClueCon")
				c.command(allChannelEvents)
				uuid := newUUID()
				job := c.originate(uuid, endpoint)
				clock.Advance(want.after)
				var result string
				evs := c.collectUntil(uuid, func(f wireFrame) bool {
					if isJob(job)(f) {
						result = strings.TrimSpace(f.eventBody())
					}
					return isEvent("CHANNEL_DESTROY", uuid)(f)
				})
				if result == "" {
					result = strings.TrimSpace(c.waitEvent(isJob(job)).eventBody())
				}
				require.True(t, strings.HasPrefix(result, want.result), "result %q", result)
				got := names(evs)
				require.Equal(t, want.answered, contains(got, "CHANNEL_ANSWER"), got)
				require.Equal(t, want.progress, contains(got, "CHANNEL_PROGRESS"), got)
				hc := evs[len(evs)-2]
				require.Equal(t, "CHANNEL_HANGUP_COMPLETE", hc.eventName())
				require.Equal(t, want.cause, hc.field("Hangup-Cause"))
				require.Equal(t, want.cause, hc.field("variable_hangup_cause"))
				require.Equal(t, want.billsec, hc.field("variable_billsec"))
				if want.answered {
					require.NotEqual(t, "0", hc.field("Caller-Channel-Answered-Time"))
				} else {
					require.Equal(t, "0", hc.field("Caller-Channel-Answered-Time"))
				}
				if strings.HasPrefix(endpoint, "sofia") {
					require.Equal(t, want.sip, hc.field("variable_sip_term_status"))
					require.Equal(t, "sofia/external/+1555000"+suffix, hc.field("Channel-Name"))
				}
				require.Equal(t, 0, s.ChannelCount())
			})
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestSilentCalleeStaysUp checks scenario 1005 keeps both legs until
// killed, whatever the time.
func TestSilentCalleeStaysUp(t *testing.T) {
	t.Parallel()
	s, clock := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	job := c.originate(uuid, "loopback/1005")
	require.Equal(t, "+OK "+uuid+"\n", c.waitEvent(isJob(job)).eventBody())
	c.waitEvent(isEvent("CHANNEL_PARK", uuid))
	clock.Advance(2 * time.Hour)
	require.Equal(t, "true", c.api("uuid_exists "+uuid))
	require.Equal(t, 2, s.ChannelCount())
	require.Equal(t, "+OK\n", c.api("uuid_kill "+uuid+" USER_BUSY"))
	hc := c.waitEvent(isEvent("CHANNEL_HANGUP_COMPLETE", uuid))
	require.Equal(t, "USER_BUSY", hc.field("variable_hangup_cause"))
	require.Equal(t, "7200", hc.field("variable_billsec"))
	c.waitEvent(isEvent("CHANNEL_DESTROY", uuid))
	require.Equal(t, "false", c.api("uuid_exists "+uuid))
}

// TestScaledTimeBillsec runs on the wall clock at 1/100 speed: an answered
// 1 s call reports billsec in simulated seconds, never less than 1.
func TestScaledTimeBillsec(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{TimeScale: 0.01})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	c.originate(uuid, "sofia/gateway/carrier/+15550009999")
	hc := c.waitEvent(isEvent("CHANNEL_HANGUP_COMPLETE", uuid))
	require.Equal(t, "NORMAL_CLEARING", hc.field("Hangup-Cause"))
	billsec, err := strconv.Atoi(hc.field("variable_billsec"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, billsec, 1)
	billmsec, err := strconv.Atoi(hc.field("variable_billmsec"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, billmsec, 1000)
}
