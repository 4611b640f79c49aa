package switchsim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// marker waits until everything the simulator produced so far has been
// read (replies and events arrive in order), returning those events.
func (c *client) marker() []wireFrame {
	c.t.Helper()
	require.Equal(c.t, "false", c.api("uuid_exists marker"))
	evs := c.events
	c.events = nil
	return evs
}

func TestMaxSessionsRefusesWithoutChannels(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{MaxSessions: 3})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	first := newUUID()
	c.originate(first, "loopback/1005")
	c.waitEvent(isEvent("CHANNEL_PARK", first))

	second := newUUID()
	job := c.originate(second, "loopback/1005") // needs two sessions, one is left
	require.Equal(t, "-ERR DESTINATION_OUT_OF_ORDER\n", c.waitEvent(isJob(job)).eventBody())
	for _, f := range c.marker() {
		require.NotEqual(t, second, f.field("Unique-ID"), "a refused originate creates no channel")
	}
	third := newUUID()
	job = c.originate(third, "sofia/gateway/carrier/+15550001005") // one session fits
	require.Equal(t, "+OK "+third+"\n", c.waitEvent(isJob(job)).eventBody())
	require.Equal(t, 3, s.ChannelCount())

	require.Equal(t, "+OK max sessions: 2\n", c.api("fsctl max_sessions 2"))
	require.Contains(t, c.api("status"), "\n3 session(s) - peak 3, last 5min 3 \n")
	require.Contains(t, c.api("status"), "\n2 session(s) max\n")
	require.Equal(t, "+OK hangup all channels with cause MANAGER_REQUEST\n", c.api("hupall"))
	causes := map[string]string{}
	for len(causes) < 2 {
		hc := c.waitEvent(isEvent("CHANNEL_HANGUP_COMPLETE", ""))
		if id := hc.field("Unique-ID"); id == first || id == third {
			causes[id] = hc.field("variable_hangup_cause")
		}
	}
	require.Equal(t, map[string]string{first: "MANAGER_REQUEST", third: "MANAGER_REQUEST"}, causes)
	c.marker()
	require.Zero(t, s.ChannelCount())
}

func TestDuplicateOriginationUUIDIsRefused(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	uuid := newUUID()
	require.Equal(t, "+OK "+uuid+"\n", c.api("originate {origination_uuid="+uuid+"}loopback/1005 &park()"))
	require.Equal(t, "-ERR DESTINATION_OUT_OF_ORDER\n", c.api("originate {origination_uuid="+uuid+"}loopback/1005 &park()"))
	require.Equal(t, 2, s.ChannelCount())
}

// TestSessionsPerSecondDelays checks originates over the per-second budget
// wait for the next second instead of failing, like FreeSWITCH.
func TestSessionsPerSecondDelays(t *testing.T) {
	t.Parallel()
	s, clock := manualSim(t, Config{MaxSPS: 2})
	c := dial(t, s, "ClueCon")
	c.command("event plain CHANNEL_OUTGOING BACKGROUND_JOB")
	var uuids, jobs []string
	for i := 0; i < 3; i++ {
		uuid := newUUID()
		uuids = append(uuids, uuid)
		jobs = append(jobs, c.originate(uuid, "sofia/gateway/carrier/+15550001005"))
	}
	started := map[string]bool{}
	for _, f := range c.marker() {
		if f.eventName() == "CHANNEL_OUTGOING" {
			started[f.field("Unique-ID")] = true
		}
	}
	require.Equal(t, map[string]bool{uuids[0]: true, uuids[1]: true}, started, "the third waits")
	require.Contains(t, c.api("status"), "2 session(s) per Sec out of max 2")

	clock.Advance(time.Second)
	c.waitEvent(isEvent("CHANNEL_OUTGOING", uuids[2]))
	require.True(t, strings.HasPrefix(c.waitEvent(isJob(jobs[2])).eventBody(), "+OK"), "delayed, not refused")

	require.Equal(t, "+OK sessions per second: 50\n", c.api("fsctl sps 50"))
	require.Equal(t, 3, s.Originated())
}
