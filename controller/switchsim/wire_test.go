package switchsim

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{Password: "s3cret"})

	t.Run("before auth only auth and exit work", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s, "")
		require.Equal(t, "-ERR command not found", c.command("api status").get("Reply-Text"))
		require.Equal(t, "+OK accepted", c.command("auth s3cret").get("Reply-Text"))
		require.Contains(t, c.api("status"), "is ready")
	})
	t.Run("wrong password disconnects", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s, "")
		c.send("auth ClueCon\n\n")
		rest, err := io.ReadAll(c.r)
		require.NoError(t, err)
		require.Equal(t, "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"+disconnectNotice, string(rest))
	})
	t.Run("CRLF framing", func(t *testing.T) {
		t.Parallel()
		c := dial(t, s, "")
		c.send("auth s3cret\r\n\r\n")
		require.Equal(t, "+OK accepted", c.next().get("Reply-Text"))
		c.send("api uuid_exists nope\r\n\r\n")
		require.Equal(t, "false", c.next().body)
	})
}

func TestExitSendsNoticeAndCloses(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.send("exit\n\n")
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err)
	require.Equal(t, "Content-Type: command/reply\nReply-Text: +OK bye\n\n"+disconnectNotice, string(rest))
}

func TestUnknownCommands(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	c := dial(t, s, "ClueCon")
	require.Equal(t, "-ERR command not found", c.command("no_such_esl_command").get("Reply-Text"))
	require.Equal(t, "-ERR no_such Command not found!\n", c.api("no_such"))
	require.Equal(t, "-ERR no keywords supplied", c.command("event plain").get("Reply-Text"))
	require.Equal(t, "-ERR not listening for events", c.command("noevents").get("Reply-Text"))
	require.Equal(t, "-ERR invalid syntax", c.command("filter Unique-ID").get("Reply-Text"))
	require.Equal(t, "\n0 total.\n", c.api("show channels"))
	require.Equal(t, "{\"row_count\": 0}\n", c.api("show calls as json"))
	require.Equal(t, "-USAGE: <uuid> [cause]\n", c.api("uuid_kill"))
	require.Equal(t, "+OK max sessions: 1000\n", c.api("fsctl max_sessions"))
}

// TestPipelinedCommands sends several commands in one write: replies come
// back in order.
func TestPipelinedCommands(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.send("api uuid_exists a\n\napi hostname\n\napi uuid_exists b\n\n")
	require.Equal(t, "false", c.next().body)
	require.Equal(t, "switchsim", c.next().body)
	require.Equal(t, "false", c.next().body)
}

func TestBgapiNonOriginate(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.command("event plain BACKGROUND_JOB")
	c.send("bgapi hostname\nJob-UUID: my-job\n\n")
	reply := c.next()
	require.Equal(t, "+OK Job-UUID: my-job", reply.get("Reply-Text"))
	require.Equal(t, "my-job", reply.get("Job-UUID"))
	ev := c.event()
	require.Equal(t, "my-job", ev.field("Job-UUID"))
	require.Equal(t, "hostname", ev.field("Job-Command"))
	require.Empty(t, ev.field("Job-Command-Arg"))
	require.Equal(t, "switchsim", ev.eventBody())
}

func TestSyncOriginate(t *testing.T) {
	t.Parallel()
	s, clock := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	require.Equal(t, "+OK "+uuid+"\n", c.api("originate {origination_uuid="+uuid+"}loopback/1005 &park()"))
	require.Empty(t, c.events, "the events of a blocking originate follow its reply")
	c.waitEvent(isEvent("CHANNEL_PARK", uuid))
	require.Equal(t, "-ERR USER_BUSY\n", c.api("originate loopback/1003 &park()"))
	require.Equal(t, originateUsage, c.api("originate"))
	require.Equal(t, "-ERR CHAN_NOT_IMPLEMENTED\n", c.api("originate {origination_uuid=x}nosuchendpoint/123 &park()"))
	require.Equal(t, "-ERR CALL_REJECTED\n", c.api("originate error/call_rejected &park()"))
	require.Equal(t, 5, s.Originated())

	// A blocking originate waits for the callee: NO_ANSWER at the timeout.
	blocked := dial(t, s, "ClueCon")
	blocked.send("api originate {originate_timeout=3}loopback/1004 &park()\n\n")
	c.waitEvent(func(f wireFrame) bool {
		return f.eventName() == "CHANNEL_PROGRESS" && f.field("Channel-Name") == "loopback/1004-a"
	})
	clock.Advance(4 * time.Second)
	require.Equal(t, "-ERR NO_ANSWER\n", blocked.next().body)
}

func TestEventFormatsAndFilters(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	js := dial(t, s, "ClueCon")
	require.Equal(t, "+OK event listener enabled json", js.command("event json CHANNEL_ANSWER").get("Reply-Text"))
	filtered := dial(t, s, "ClueCon")
	filtered.command("event plain ALL")
	uuid := newUUID()
	require.Equal(t, "+OK filter added. [Unique-ID]=["+uuid+"]", filtered.command("filter Unique-ID "+uuid).get("Reply-Text"))
	require.Equal(t, "+OK filter added. [Event-Name]=[-CHANNEL_CREATE]",
		filtered.command("filter Event-Name -CHANNEL_CREATE").get("Reply-Text"))

	c := dial(t, s, "ClueCon")
	c.originate(newUUID(), "loopback/1005")
	c.originate(uuid, "loopback/1005")

	ans := js.event()
	require.Equal(t, "text/event-json", ans.contentType())
	require.True(t, strings.HasPrefix(ans.body, `{"Event-Name":"CHANNEL_ANSWER","Core-UUID":`), ans.body)
	require.Contains(t, ans.body, `"Caller-Callee-ID-Name":"Outbound Call"`)

	var got []string
	for len(got) < 5 {
		f := filtered.event()
		require.Equal(t, uuid, f.field("Unique-ID"))
		got = append(got, f.eventName())
	}
	require.Equal(t, []string{"CHANNEL_OUTGOING", "CHANNEL_ORIGINATE", "CHANNEL_ANSWER", "CHANNEL_EXECUTE", "CHANNEL_PARK"}, got)
	require.Equal(t, "+OK filter deleted. [Unique-ID]["+uuid+"]", filtered.command("filter delete Unique-ID "+uuid).get("Reply-Text"))
	require.Equal(t, "+OK no longer listening for events", filtered.command("noevents").get("Reply-Text"))
}

func TestShowChannelsText(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	uuid := newUUID()
	c.originate(uuid, "loopback/1005")
	out := c.api("show channels")
	lines := strings.Split(out, "\n")
	require.Equal(t, strings.Join(channelColumns, ","), lines[0])
	require.True(t, strings.HasPrefix(lines[1], uuid+",outbound,"), lines[1])
	require.Contains(t, lines[1], ",loopback/1005-a,CS_EXECUTE,Outbound Call,1005,,1005,park,,xml,default,")
	require.Equal(t, []string{"", "2 total.", ""}, lines[3:])
	require.Equal(t, 2, s.ChannelCount())
	chans := s.Channels()
	require.Equal(t, uuid, chans[0].UUID)
	require.Equal(t, "loopback/1005-b", chans[1].Name)
	require.True(t, chans[0].Answered)
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	cmd, n, err := ParseCommand([]byte("\r\n\nsendmsg x\r\ncall-command: execute\r\nContent-Length: 5\r\n\r\nhello\r\n\r\nnext"))
	require.NoError(t, err)
	require.Equal(t, "sendmsg x", cmd.Line)
	require.Equal(t, []Header{{"call-command", "execute"}, {"Content-Length", "5"}}, cmd.Headers)
	require.Equal(t, "hello", cmd.Body)
	require.Equal(t, len("\r\n\nsendmsg x\r\ncall-command: execute\r\nContent-Length: 5\r\n\r\nhello"), n)
	require.Equal(t, "execute", cmd.Header("Call-Command"))

	_, n, err = ParseCommand([]byte("api status\n"))
	require.NoError(t, err)
	require.Zero(t, n, "incomplete")
	_, n, err = ParseCommand([]byte("sendmsg x\nContent-Length: 9\n\nabc"))
	require.NoError(t, err)
	require.Zero(t, n, "body incomplete")
	cmd, n, err = ParseCommand([]byte("\r\n\r\n"))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Empty(t, cmd.Line)
	_, _, err = ParseCommand([]byte("sendmsg x\nContent-Length: 99999999\n\n"))
	require.ErrorIs(t, err, ErrCommandTooLarge)
	_, _, err = ParseCommand([]byte(strings.Repeat("a", maxCommandHeader+1)))
	require.ErrorIs(t, err, ErrCommandTooLarge)
}

func TestParseOriginate(t *testing.T) {
	t.Parallel()
	o, fail := ParseOriginate(`{origination_uuid=u1,origination_caller_id_name='Acme\, Inc',x=a\,b,y=p=q,z=\'1,2\'}loopback/1001/callgate-test &playback(/tmp/a.wav)`)
	require.Empty(t, fail)
	require.Equal(t, []Var{{"origination_uuid", "u1"}, {"origination_caller_id_name", "Acme, Inc"}, {"x", "a,b"},
		{"y", "p=q"}, {"z", "1,2"}}, o.Vars)
	require.Equal(t, "loopback/1001/callgate-test", o.Endpoint)
	require.Equal(t, "playback", o.App)
	require.Equal(t, "/tmp/a.wav", o.AppData)

	// Like FreeSWITCH, the blank split of the api arguments consumes plain
	// quotes: they keep blanks together but no longer protect commas.
	o, _ = ParseOriginate(`{n='Acme, Inc'}loopback/1 &park()`)
	require.Equal(t, []Var{{"n", "Acme"}}, o.Vars)
	// What survives both splits: \s for a blank, \, for a comma.
	o, _ = ParseOriginate(`{n=Smith\,\sJohn\s&\sCo}loopback/1 &park()`)
	require.Equal(t, []Var{{"n", "Smith, John & Co"}}, o.Vars)

	// Blanks split the api arguments first, quotes keep them together.
	o, fail = ParseOriginate(`{origination_caller_id_name='John Smith'}sofia/gateway/gw/+15551231001 1000 XML default 'Jane Doe' 5551 30`)
	require.Empty(t, fail)
	require.Equal(t, []Var{{"origination_caller_id_name", "John Smith"}}, o.Vars)
	require.Equal(t, "1000", o.Exten)
	require.Equal(t, "Jane Doe", o.CIDName)
	require.Equal(t, "5551", o.CIDNum)
	require.Equal(t, 30, o.Timeout)

	_, fail = ParseOriginate("loopback/1001")
	require.Equal(t, originateUsage, fail)
	_, fail = ParseOriginate("{a=b loopback/1001 &park()")
	require.Equal(t, "-ERR INVALID_URL\n", fail)
}

func TestSeparate(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a", "b c", "d"}, separate("a 'b c'   d", ' ', 10))
	require.Equal(t, []string{"a", "b c d"}, separate("a b c d", ' ', 2))
	require.Equal(t, []string{"a", "", "c"}, separate("a,,c", ',', 10))
	require.Equal(t, []string{"x=it's"}, separate(`x=it\'s`, ',', 10))
	require.Equal(t, []string{"tab\there"}, separate(`tab\there`, ',', 10))
	require.Equal(t, []string{"a", "b"}, separate("^^;a;b", ',', 10))
}

func TestSlowClientIsCutNotWaitedFor(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{WriteTimeout: 50 * time.Millisecond})
	slow, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = slow.Close() })
	require.NoError(t, slow.(*net.TCPConn).SetReadBuffer(4096))
	r := bufio.NewReader(slow)
	_, err = readFrame(r)
	require.NoError(t, err)
	_, err = slow.Write([]byte("auth ClueCon\n\nevent plain ALL\n\n"))
	require.NoError(t, err)
	c := dial(t, s, "ClueCon")
	// The slow client never reads; the switch keeps serving the other one
	// and drops the slow one once a write stays blocked past the deadline.
	for i := 0; s.ConnectionCount() > 1; i++ {
		require.Less(t, i, 2000, "the slow client was never cut")
		s.Burst(200)
		require.Equal(t, "false", c.api("uuid_exists x"))
	}
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, r)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection must be closed, not left open")
}
