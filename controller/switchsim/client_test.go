package switchsim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wireFrame is one frame read from the simulator.
type wireFrame struct {
	headers []Header
	body    string
	raw     string
}

func (f wireFrame) get(name string) string {
	for _, h := range f.headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

func (f wireFrame) contentType() string { return f.get("Content-Type") }

func (f wireFrame) isEvent() bool { return strings.HasPrefix(f.contentType(), "text/event-") }

// fields parses a text/event-plain body into decoded headers, in order.
func (f wireFrame) fields() []Header {
	var out []Header
	head, _, _ := strings.Cut(f.body, "\n\n")
	for _, line := range strings.Split(head, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if v, err := url.PathUnescape(value); err == nil {
			value = v
		}
		out = append(out, Header{name, value})
	}
	return out
}

// field returns a decoded event header.
func (f wireFrame) field(name string) string {
	for _, h := range f.fields() {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

func (f wireFrame) eventName() string { return f.field("Event-Name") }

// eventBody is the body inside a text/event-plain event (BACKGROUND_JOB).
func (f wireFrame) eventBody() string {
	_, rest, _ := strings.Cut(f.body, "\n\n")
	return rest
}

// readFrame reads one ESL frame the way a client does.
func readFrame(r *bufio.Reader) (wireFrame, error) {
	var f wireFrame
	var raw strings.Builder
	for {
		line, err := r.ReadString('\n')
		raw.WriteString(line)
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if len(f.headers) == 0 {
				continue
			}
			break
		}
		name, value, _ := strings.Cut(line, ": ")
		f.headers = append(f.headers, Header{name, value})
	}
	if cl := f.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil {
			return f, fmt.Errorf("bad Content-Length %q", cl)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return f, err
		}
		f.body = string(b)
		raw.Write(b)
	}
	f.raw = raw.String()
	return f, nil
}

// client is a minimal ESL client for tests.
type client struct {
	t      testing.TB
	conn   net.Conn
	r      *bufio.Reader
	events []wireFrame // events read while waiting for replies
}

func dial(t testing.TB, s *Sim, password string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	c := &client{t: t, conn: nc, r: bufio.NewReader(nc)}
	f := c.next()
	require.Equal(t, "auth/request", f.contentType())
	if password != "" {
		require.Equal(t, "+OK accepted", c.command("auth "+password).get("Reply-Text"))
	}
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	_, err := c.conn.Write([]byte(s))
	require.NoError(c.t, err)
}

// next reads the next frame, failing the test after 10 s.
func (c *client) next() wireFrame {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	f, err := readFrame(c.r)
	require.NoError(c.t, err)
	return f
}

// command sends a command and returns its reply, keeping events that
// arrive first.
func (c *client) command(cmd string) wireFrame {
	c.t.Helper()
	c.send(cmd + "\n\n")
	for {
		f := c.next()
		if f.isEvent() {
			c.events = append(c.events, f)
			continue
		}
		return f
	}
}

// api runs "api <cmd>" and returns the body.
func (c *client) api(cmd string) string {
	c.t.Helper()
	f := c.command("api " + cmd)
	require.Equal(c.t, "api/response", f.contentType())
	return f.body
}

// event returns the next event (buffered ones first).
func (c *client) event() wireFrame {
	c.t.Helper()
	if len(c.events) > 0 {
		f := c.events[0]
		c.events = c.events[1:]
		return f
	}
	for {
		f := c.next()
		if f.isEvent() {
			return f
		}
	}
}

// waitEvent returns the first event matching, skipping others; it fails
// after 10 s.
func (c *client) waitEvent(match func(wireFrame) bool) wireFrame {
	c.t.Helper()
	for {
		f := c.event()
		if match(f) {
			return f
		}
	}
}

func isEvent(name, uuid string) func(wireFrame) bool {
	return func(f wireFrame) bool {
		return f.eventName() == name && (uuid == "" || f.field("Unique-ID") == uuid)
	}
}

func isJob(jobUUID string) func(wireFrame) bool {
	return func(f wireFrame) bool {
		return f.eventName() == "BACKGROUND_JOB" && f.field("Job-UUID") == jobUUID
	}
}

const allChannelEvents = "event plain CHANNEL_CREATE CHANNEL_OUTGOING CHANNEL_ORIGINATE CHANNEL_PROGRESS " +
	"CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_PARK CHANNEL_UNPARK CHANNEL_BRIDGE CHANNEL_UNBRIDGE " +
	"CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE DTMF RECORD_START RECORD_STOP CHANNEL_HANGUP " +
	"CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY BACKGROUND_JOB"

// newSim starts a simulator on loopback and closes it with the test.
func newSim(t testing.TB, cfg Config) *Sim {
	t.Helper()
	s := New(cfg)
	require.NoError(t, s.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// manualSim starts a simulator driven by a ManualClock.
func manualSim(t testing.TB, cfg Config) (*Sim, *ManualClock) {
	t.Helper()
	clock := NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg.Clock = clock
	return newSim(t, cfg), clock
}

// originate sends a bgapi originate for number with a fixed UUID and
// returns the Job-UUID.
func (c *client) originate(uuid, endpoint string) string {
	c.t.Helper()
	f := c.command("bgapi originate {origination_uuid=" + uuid + ",origination_caller_id_number=4000}" + endpoint + " &park()")
	require.Equal(c.t, "command/reply", f.contentType())
	job := f.get("Job-UUID")
	require.NotEmpty(c.t, job, f.raw)
	return job
}

// names returns the event names of frames of one channel.
func names(evs []wireFrame) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.eventName())
	}
	return out
}

// collectUntil reads events until stop matches (inclusive) and returns
// those of the channel uuid (all when uuid is "").
func (c *client) collectUntil(uuid string, stop func(wireFrame) bool) []wireFrame {
	c.t.Helper()
	var out []wireFrame
	for {
		f := c.event()
		if uuid == "" || f.field("Unique-ID") == uuid {
			out = append(out, f)
		}
		if stop(f) {
			return out
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
