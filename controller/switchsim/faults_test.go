package switchsim

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readUntilClosed reads frames until the connection ends and reports them
// and whether a disconnect notice came first.
func (c *client) readUntilClosed() (frames []wireFrame, notice bool) {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		f, err := readFrame(c.r)
		if err != nil {
			require.NotErrorIs(c.t, err, errDeadline(c), "the connection must end")
			return frames, notice
		}
		if f.contentType() == "text/disconnect-notice" {
			notice = true
		}
		frames = append(frames, f)
	}
}

func errDeadline(c *client) error {
	_ = c
	return io.ErrNoProgress // placeholder never returned by reads; timeouts fail below
}

func TestDropConnectionsKeepsCalls(t *testing.T) {
	t.Parallel()
	s, clock := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	silent := newUUID()
	c.originate(silent, "loopback/1005")
	short := newUUID()
	c.originate(short, "loopback/1006")
	c.waitEvent(isEvent("CHANNEL_PARK", short))

	s.DropConnections()
	_, notice := c.readUntilClosed()
	require.False(t, notice, "a network cut sends no disconnect notice")
	require.Zero(t, s.ConnectionCount())

	// While nobody listens the 1006 call ends; its events are lost.
	clock.Advance(3 * time.Second)
	require.Equal(t, 2, s.ChannelCount(), "the switch keeps its calls")

	c2 := dial(t, s, "ClueCon")
	c2.command(allChannelEvents)
	require.Equal(t, "true", c2.api("uuid_exists "+silent))
	require.Equal(t, "false", c2.api("uuid_exists "+short))
	require.Equal(t, "+OK\n", c2.api("uuid_kill "+silent))
	first := c2.event()
	require.Equal(t, "CHANNEL_HANGUP", first.eventName(), "nothing from before the reconnect is replayed")
	require.Equal(t, silent, first.field("Unique-ID"))
}

func TestDropAfterEvents(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	s.SetFaults(Faults{DropAfterEvents: 5})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	c.send("bgapi originate loopback/1005 &park()\n\n")
	frames, notice := c.readUntilClosed()
	require.False(t, notice)
	events := 0
	for _, f := range frames {
		if f.isEvent() {
			events++
		}
	}
	require.Equal(t, 5, events)
	require.Equal(t, 2, s.ChannelCount(), "the call survives the cut")
}

func TestReplyDelayKeepsOrder(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	s.SetFaults(Faults{ReplyDelay: 20 * time.Millisecond})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	c.send("bgapi originate {origination_uuid=" + uuid + "}loopback/1005 &park()\n\n")
	require.Equal(t, "command/reply", c.next().contentType(), "the reply precedes the events it caused")
	c.waitEvent(isEvent("CHANNEL_PARK", uuid))
}

func TestBurst(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	all := dial(t, s, "ClueCon")
	all.command("event plain ALL")
	some := dial(t, s, "ClueCon")
	some.command("event plain CHANNEL_EXECUTE")
	s.Burst(100)
	require.Len(t, names(all.marker()), 100)
	evs := some.marker()
	require.Len(t, names(evs), 50, "50 CHANNEL_EXECUTE, 40 CHANNEL_EXECUTE_COMPLETE, 10 HEARTBEAT")
	for _, f := range evs {
		require.Equal(t, "CHANNEL_EXECUTE", f.eventName())
		require.Equal(t, "inbound", f.field("Call-Direction"))
	}
}

func TestForeignChannel(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := s.StartForeignChannel("+15557654321")
	evs := c.collectUntil(uuid, isEvent("CHANNEL_PARK", uuid))
	require.Equal(t, []string{"CHANNEL_CREATE", "CHANNEL_EXECUTE", "CHANNEL_ANSWER", "CHANNEL_EXECUTE_COMPLETE",
		"CHANNEL_EXECUTE", "CHANNEL_PARK"}, names(evs))
	require.Equal(t, "inbound", evs[0].field("Call-Direction"))
	require.Equal(t, "sofia/external/+15557654321@192.0.2.10", evs[0].field("Channel-Name"))
	chans := s.Channels()
	require.Len(t, chans, 1)
	require.True(t, chans[0].Foreign)
	require.Contains(t, c.api("show channels as json"), `"uuid":"`+uuid+`","direction":"inbound"`)
	require.Equal(t, "+OK\n", c.api("uuid_kill "+uuid))
	c.waitEvent(isEvent("CHANNEL_DESTROY", uuid))
	require.Zero(t, s.ChannelCount())
}

func TestCloseSaysGoodbye(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.originate(newUUID(), "loopback/1005")
	require.NoError(t, s.Close())
	_, notice := c.readUntilClosed()
	require.True(t, notice)
	require.NoError(t, s.Close(), "Close is idempotent")
}

// TestManyCallsStreamIntegrity runs a thousand short calls as fast as
// they can be sent and checks every call's events arrive exactly once.
func TestManyCallsStreamIntegrity(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{TimeScale: 0.001})
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	r := bufio.NewReaderSize(nc, 1<<20)
	w := bufio.NewWriter(nc)
	_, _ = w.WriteString("auth ClueCon\n\n" + allChannelEvents + "\n\n")
	const calls = 2000
	for i := 0; i < calls; i++ {
		_, _ = w.WriteString("bgapi originate sofia/gateway/carrier/+1555000" + strconv.Itoa(2000+i) + " &park()\n\n")
	}
	require.NoError(t, w.Flush())
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(60*time.Second)))
	counts := map[string]int{}
	prev := 0
	var scratch []byte
	for counts["CHANNEL_DESTROY"] < calls {
		ct, body, err := nextFrameFast(r, &scratch)
		require.NoError(t, err)
		if ct != "text/event-plain" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(string(body[:min(len(body), 64)]), "Event-Name: "), "\n")
		counts[name]++
		i := bytes.Index(body, []byte("\nEvent-Sequence: ")) + len("\nEvent-Sequence: ")
		seq, err := strconv.Atoi(string(body[i : i+bytes.IndexByte(body[i:], '\n')]))
		require.NoError(t, err)
		require.Greater(t, seq, prev)
		prev = seq
	}
	for _, name := range []string{"CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_ANSWER",
		"BACKGROUND_JOB", "CHANNEL_EXECUTE", "CHANNEL_PARK", "CHANNEL_HANGUP", "CHANNEL_UNPARK",
		"CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"} {
		require.Equal(t, calls, counts[name], name)
	}
}
