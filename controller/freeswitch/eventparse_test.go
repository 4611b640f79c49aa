package freeswitch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

// readAll reads frames until an error and returns them (bodies copied) and
// the error.
func readAll(r io.Reader) ([]frame, error) {
	fr := newFrameReader(r)
	var out []frame
	for {
		f, err := fr.next()
		if err != nil {
			return out, err
		}
		f.body = bytes.Clone(f.body)
		out = append(out, f)
	}
}

// TestFrameReaderFixtures reads every real transcript byte stream with the
// driver's frame reader, whole and in pieces of one and of half the
// requested bytes, and compares each frame with the textproto split.
func TestFrameReaderFixtures(t *testing.T) {
	t.Parallel()
	for _, name := range fixtureNames(t) {
		data, err := os.ReadFile(filepath.Join(fixtureDir(t), name+".recv"))
		require.NoError(t, err)
		want := loadFrames(t, name)
		for mode, r := range map[string]io.Reader{
			"whole": bytes.NewReader(data),
			"bytes": iotest.OneByteReader(bytes.NewReader(data)),
			"half":  iotest.HalfReader(bytes.NewReader(data)),
		} {
			got, err := readAll(r)
			require.ErrorIs(t, err, io.EOF, "%s/%s", name, mode)
			require.Len(t, got, len(want), "%s/%s", name, mode)
			for i, f := range got {
				require.Equal(t, want[i].contentType(), f.contentType, "%s/%s frame %d", name, mode, i)
				require.Equal(t, want[i].headers.Get("Reply-Text"), f.replyText, "%s/%s frame %d", name, mode, i)
				if want[i].isEvent() {
					require.Equal(t, want[i].body, f.body, "%s/%s frame %d", name, mode, i)
				} else {
					require.Empty(t, f.body, "only event bodies are kept")
				}
			}
		}
	}
}

func TestFrameReaderDisconnectNotice(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(fixtureDir(t), "02-auth-bad.recv"))
	require.NoError(t, err)
	got, err := readAll(bytes.NewReader(data))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, ctAuthRequest, got[0].contentType)
	require.Equal(t, "-ERR invalid", got[1].replyText)
	require.Equal(t, ctDisconnect, got[len(got)-1].contentType)

	s, _ := fuzzSwitch()
	require.ErrorIs(t, s.readEvents(newFrameReader(bytes.NewReader(data))), errDisconnected)
}

func TestFrameReader(t *testing.T) {
	t.Parallel()
	ev := "Event-Name: CHANNEL_ANSWER\nUnique-ID: x\n\n"
	framed := fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(ev), ev)
	big := strings.Repeat("x", maxFrameBody)
	cases := []struct {
		name  string
		in    string
		types []string
		err   error
	}{
		{"event", framed, []string{ctEventPlain}, io.EOF},
		{"crlf", strings.ReplaceAll(fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n", len(ev)), "\n", "\r\n") + ev,
			[]string{ctEventPlain}, io.EOF},
		{"skip bodies of other types", "Content-Type: api/response\nContent-Length: 5\n\nhello" +
			"Content-Type: text/event-json\nContent-Length: 2\n\n{}" + "Content-Type: command/reply\nReply-Text: +OK\n\n" + framed,
			[]string{"api/response", "text/event-json", ctCommandReply, ctEventPlain}, io.EOF},
		{"stray blank line", "\n" + framed, []string{"", ctEventPlain}, io.EOF},
		{"no colon line skipped", "garbage\nContent-Type: text/disconnect-notice\n\n", []string{ctDisconnect}, io.EOF},
		{"empty", "", nil, io.EOF},
		{"negative length", "Content-Type: text/event-plain\nContent-Length: -1\n\n", nil, errFrameLength},
		{"non-numeric length", "Content-Length: 12a\nContent-Type: api/response\n\n", nil, errFrameLength},
		{"empty length", "Content-Length: \n\n", nil, errFrameLength},
		{"huge length", "Content-Length: 99999999999\n\n", nil, errFrameLength},
		{"over the cap", fmt.Sprintf("Content-Length: %d\n\n", maxFrameBody+1), nil, errFrameLength},
		{"at the cap", fmt.Sprintf("Content-Type: text/event-plain\nContent-Length: %d\n\n%s", maxFrameBody, big),
			[]string{ctEventPlain}, io.EOF},
		{"at the cap, skipped", fmt.Sprintf("Content-Type: log/data\nContent-Length: %d\n\n%s", maxFrameBody, big),
			[]string{"log/data"}, io.EOF},
		{"truncated header", "Content-Type: text/event-plain\nContent-Len", nil, io.ErrUnexpectedEOF},
		{"truncated before blank line", "Content-Type: text/event-plain\n", nil, io.ErrUnexpectedEOF},
		{"truncated body", "Content-Type: text/event-plain\nContent-Length: 10\n\nabc", nil, io.ErrUnexpectedEOF},
		{"truncated big body", fmt.Sprintf("Content-Type: text/event-plain\nContent-Length: %d\n\n%s", maxFrameBody, big[:100000]),
			nil, io.ErrUnexpectedEOF},
		{"truncated skipped body", "Content-Type: api/response\nContent-Length: 10\n\nabc", nil, io.ErrUnexpectedEOF},
		{"line too long", "X-Long: " + strings.Repeat("y", readBufferSize) + "\n\n", nil, errLineTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(iotest.HalfReader(strings.NewReader(tc.in)))
			require.ErrorIs(t, err, tc.err)
			var types []string
			for _, f := range got {
				types = append(types, f.contentType)
			}
			require.Equal(t, tc.types, types)
		})
	}
}

// TestFrameReaderBigBody: a body larger than the read buffer goes through
// scratch, which never grows past the cap.
func TestFrameReaderBigBody(t *testing.T) {
	t.Parallel()
	body := "Event-Name: CHANNEL_ANSWER\nUnique-ID: big\nvariable_x: " + strings.Repeat("z", 3*readBufferSize) + "\n\n"
	in := fmt.Sprintf("Content-Type: text/event-plain\nContent-Length: %d\n\n%s", len(body), body)
	fr := newFrameReader(strings.NewReader(in + in))
	for range 2 {
		f, err := fr.next()
		require.NoError(t, err)
		require.Equal(t, body, string(f.body))
		require.LessOrEqual(t, cap(fr.scratch), maxFrameBody)
	}
	_, err := fr.next()
	require.ErrorIs(t, err, io.EOF)
}

// repeatReader yields data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// TestEventPathAllocations pins the allocation budget: reading frames and
// parsing bodies allocate nothing; an event callgate keeps costs one
// allocation; one it drops costs none.
func TestEventPathAllocations(t *testing.T) {
	const ours = "50b976a2-5e58-4f1a-bbe1-07766e35f9f6"
	var stream []byte
	var bodies [][]byte
	for _, f := range loadFrames(t, "03-answer-consent-press1-record") {
		if f.isEvent() {
			stream = append(stream, f.raw...)
			bodies = append(bodies, f.body)
		}
	}
	fr := newFrameReader(&repeatReader{data: stream})
	var p eventParser
	require.Zero(t, testing.AllocsPerRun(200, func() {
		f, err := fr.next()
		if err != nil || p.parse(f.body) != nil {
			t.Fatal(err)
		}
	}))

	s, _ := fuzzSwitch()
	s.calls.addNew(ours, s.log, 0)
	for _, body := range bodies {
		ev := parseEvent(t, body)
		keep := ev.get(hUniqueID) == ours && channelKinds[ev.get(hEventName)] != ""
		allocs := testing.AllocsPerRun(50, func() {
			s.onEvent(&p, body)
			s.disp.inbox.Reset()
		})
		if keep {
			require.Equal(t, 1.0, allocs, "%s %s", ev.get(hEventName), ev.get(hUniqueID))
		} else if ev.get(hEventName) != eventBackgroundJob {
			require.Zero(t, allocs, "%s %s", ev.get(hEventName), ev.get(hUniqueID))
		}
	}
}

// sliceSink keeps what a switch delivers.
type sliceSink struct {
	events    []controller.ChannelEvent
	connected int
}

func (s *sliceSink) HandleChannelEvent(ev controller.ChannelEvent) { s.events = append(s.events, ev) }
func (s *sliceSink) SwitchConnected(string)                        { s.connected++ }

// fuzzCalls are calls of the fixtures, tracked by fuzzSwitch.
var fuzzCalls = []controller.CallID{
	"e102a1a5-891d-435e-b5ce-eef820d35ed0", // 05-busy
	"50b976a2-5e58-4f1a-bbe1-07766e35f9f6", // 03
	"cd38ba46-2316-4fad-a545-c2662bd7d363", // 16
	"238746c3-08e8-44c4-ba49-c32dc77335b1", // 16
}

// fuzzSwitch returns a Switch that is not started, tracking fuzzCalls;
// drain delivers what its reader queued.
func fuzzSwitch() (*Switch, *sliceSink) {
	sink := &sliceSink{}
	s, err := New(Config{Name: "fs1", Address: "127.0.0.1:1", Password: "x", DialTemplate: "loopback/{number}"}, sink)
	if err != nil {
		panic(err)
	}
	for _, id := range fuzzCalls {
		s.calls.addNew(id, s.log, 0)
	}
	return s, sink
}

// drain delivers what the reader queued, on the calling goroutine, as the
// dispatcher goroutine would.
func (s *Switch) drain() {
	d := s.disp
	d.inbox.Drain(func(it *inboxItem) {
		if it.marker == markConnected {
			d.connected()
		} else {
			d.deliver(&it.ev)
		}
	})
}

// FuzzReadFrames drives the event connection's read loop over arbitrary
// bytes (frames and bodies), then the dispatcher's mapping and tracking. It
// must end (the input is finite), never panic, keep its buffers within the
// 1 MiB cap and deliver only events of tracked calls. Seeds: every
// transcript plus testdata/fuzz/FuzzReadFrames.
func FuzzReadFrames(f *testing.F) {
	for _, name := range fixtureNames(f) {
		data, err := os.ReadFile(filepath.Join(fixtureDir(f), name+".recv"))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, sink := fuzzSwitch()
		fr := newFrameReader(iotest.HalfReader(bytes.NewReader(data)))
		err := s.readEvents(fr)
		require.Error(t, err)
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errDisconnected) &&
			!errors.Is(err, errFrameLength) && !errors.Is(err, errLineTooLong) {
			t.Fatalf("unexpected error %v", err)
		}
		require.LessOrEqual(t, cap(fr.scratch), maxFrameBody)
		s.drain()
		ours := map[controller.CallID]bool{}
		for _, id := range fuzzCalls {
			ours[id] = true
		}
		for _, ev := range sink.events {
			require.True(t, ours[ev.CallID], "delivered an event of %q", ev.CallID)
		}
	})
}
