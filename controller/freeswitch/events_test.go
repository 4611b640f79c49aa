package freeswitch

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

// TestHeaderNamesOnTheWire: every header the parser keeps appears under
// exactly that name (the parser is case-sensitive) in the real transcripts.
func TestHeaderNamesOnTheWire(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	names := append(headerNames[:], "variable_consent_digit")
	for _, name := range fixtureNames(t) {
		for _, body := range eventBodies(t, name) {
			for _, h := range names {
				if bytes.HasPrefix(body, []byte(h+": ")) || bytes.Contains(body, []byte("\n"+h+": ")) {
					seen[h] = true
				}
			}
		}
	}
	for _, h := range headerNames {
		if h == "variable_"+gatherVar {
			// Our play_and_get_digits variable's name: the captures show
			// the mechanism with theirs (… consent_digit ^[12]$).
			h = "variable_consent_digit"
		}
		require.True(t, seen[h], "%s never appears in the fixtures", h)
	}
	for h, name := range headerNames {
		got, ok := lookupHeader([]byte(name))
		require.True(t, ok, name)
		require.Equal(t, header(h), got)
	}
	for _, name := range []string{"unique-id", "Unique-Id", "Event-Nam", "Event-Names", "", "x"} {
		_, ok := lookupHeader([]byte(name))
		require.False(t, ok, name)
	}
}

// refEvent is how eslgo read an event (net/textproto, first value under the
// canonical key, url.PathUnescape) with the driver's old rule of keeping the
// raw value on a bad escape.
func refEvent(t *testing.T, body []byte) (func(header) string, []byte) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(body))
	h, err := textproto.NewReader(r).ReadMIMEHeader()
	require.NoError(t, err)
	var inner []byte
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		require.NoError(t, err)
		inner = make([]byte, n)
		_, err = io.ReadFull(r, inner)
		require.NoError(t, err)
	}
	get := func(k header) string {
		v := h[textproto.CanonicalMIMEHeaderKey(headerNames[k])]
		if len(v) == 0 {
			return ""
		}
		if d, err := url.PathUnescape(v[0]); err == nil {
			return d
		}
		return v[0]
	}
	return get, inner
}

// TestParserMatchesTextproto parses every event of every transcript with
// the driver's parser and with the textproto reading eslgo used: every
// header callgate keeps and every body must be the same.
func TestParserMatchesTextproto(t *testing.T) {
	t.Parallel()
	n := 0
	for _, name := range fixtureNames(t) {
		for _, body := range eventBodies(t, name) {
			ev := parseEvent(t, body)
			ref, inner := refEvent(t, body)
			for h := range numHeaders {
				require.Equal(t, ref(h), ev.get(h), "%s: %s of event %d", name, headerNames[h], eventSequence(ev))
			}
			require.Equal(t, string(inner), ev.bodyText(), name)
			n++
		}
	}
	require.Greater(t, n, 300)
}

func TestEventParser(t *testing.T) {
	t.Parallel()
	var p eventParser
	require.NoError(t, p.parse([]byte("Event-Name: DTMF\nvariable_sip_h_X(bad): 1\nno colon here\n: no name\n"+
		"DTMF-Digit: %31\r\nUnique-ID: first\nUnique-ID: second\nHangup-Cause: 100%zz\nApplication:  a+b%20c \n\n")))
	ev := p.event()
	require.Equal(t, "DTMF", ev.get(hEventName), "a bad header name or a line without a colon skips the line, not the event")
	require.Equal(t, "1", ev.get(hDTMFDigit), "CR LF tolerated, value URL-decoded")
	require.Equal(t, "first", ev.get(hUniqueID), "the first value wins, as textproto's Get")
	require.Equal(t, "100%zz", ev.get(hHangupCause), "a bad escape keeps the raw value")
	require.Equal(t, "a+b c", ev.get(hApplication), "trimmed; + is not a space")
	require.Empty(t, ev.get(hJobUUID))
	require.Empty(t, ev.bodyText())

	require.NoError(t, p.parse([]byte("Event-Name: BACKGROUND_JOB\nContent-Length: 4\n\n+OK\nextra")))
	ev = p.event()
	require.Equal(t, "+OK\n", ev.bodyText())
	require.Equal(t, "BACKGROUND_JOB", ev.get(hEventName), "the event outlives the parser's next parse")
	require.NoError(t, p.parse([]byte("Event-Name: CHANNEL_ANSWER")))
	require.Equal(t, "BACKGROUND_JOB", ev.get(hEventName))
	require.Equal(t, "CHANNEL_ANSWER", string(p.value(hEventName)), "no trailing newline: still a header")

	for _, body := range []string{
		"Event-Name: X\nContent-Length: -1\n\n",
		"Event-Name: X\nContent-Length: 99999999999\n\nab",
		"Event-Name: X\nContent-Length: 5\n\nab",
		"Event-Name: X\nContent-Length: zz\n\n",
		"Event-Name: X\nContent-Length: 1",
	} {
		require.ErrorIs(t, p.parse([]byte(body)), errEventBodyLen, body)
	}
}

func TestAppendUnescaped(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "plain", "Outbound%20Call", "100%zz", "%", "%4", "%41", "a%2", "%e5%bc%a0%E4%B8%89",
		"a+b", "%25%", "%%41", "%4%41", "x%0Ay", "%00"} {
		want, err := url.PathUnescape(v)
		if err != nil {
			want = v
		}
		require.Equal(t, want, string(appendUnescaped(nil, []byte(v))), v)
	}
}

// fixtureEvent returns the event of a transcript with the given sequence
// number.
func fixtureEvent(t *testing.T, name string, seq uint64) *event {
	t.Helper()
	for _, b := range eventBodies(t, name) {
		if ev := parseEvent(t, b); eventSequence(ev) == seq {
			return ev
		}
	}
	t.Fatalf("%s has no event %d", name, seq)
	return nil
}

func TestMapChannelEvent(t *testing.T) {
	t.Parallel()
	const aLeg = "50b976a2-5e58-4f1a-bbe1-07766e35f9f6"
	answered := time.UnixMicro(1795248924423787).UTC()

	ce, ok := mapChannelEvent("fs1", fixtureEvent(t, "03-answer-consent-press1-record", 1366))
	require.True(t, ok)
	require.Equal(t, controller.ChannelEvent{
		Switch: "fs1", CallID: aLeg, Kind: controller.EventHangupComplete, Name: "CHANNEL_HANGUP_COMPLETE",
		Sequence: 1366, At: ce.At, HangupCause: "NORMAL_CLEARING", Billsec: 4, Duration: 4,
		Answered: true, AnsweredAt: answered,
	}, ce)
	require.False(t, ce.At.IsZero())
	require.Equal(t, time.UTC, ce.At.Location())

	ce, ok = mapChannelEvent("fs1", fixtureEvent(t, "03-answer-consent-press1-record", 1327))
	require.True(t, ok)
	require.Equal(t, controller.EventAnswer, ce.Kind)
	require.False(t, ce.Answered, "Answered is for hangup events")

	ce, ok = mapChannelEvent("fs1", fixtureEvent(t, "03-answer-consent-press1-record", 1345))
	require.True(t, ok)
	require.Equal(t, EventDTMF, ce.Kind)
	require.Equal(t, "1", ce.Detail)

	ce, ok = mapChannelEvent("fs1", fixtureEvent(t, "05-busy", 1585))
	require.True(t, ok)
	require.Equal(t, "USER_BUSY", ce.HangupCause)
	require.False(t, ce.Answered)
	require.Zero(t, ce.Billsec)

	ce, ok = mapChannelEvent("fs1", fixtureEvent(t, "19-sip-no-answer-487", sipHangupComplete(t)))
	require.True(t, ok)
	require.Equal(t, 487, ce.SIPStatus)

	_, ok = mapChannelEvent("fs1", fixtureEvent(t, "05-busy", 1560)) // CHANNEL_OUTGOING
	require.False(t, ok)
}

// sipHangupComplete finds a CHANNEL_HANGUP_COMPLETE with a SIP status in
// fixture 19.
func sipHangupComplete(t *testing.T) uint64 {
	t.Helper()
	for _, b := range eventBodies(t, "19-sip-no-answer-487") {
		ev := parseEvent(t, b)
		if ev.get(hEventName) == "CHANNEL_HANGUP_COMPLETE" && ev.get(hSIPTermStatus) == "487" {
			return eventSequence(ev)
		}
	}
	t.Fatal("no SIP hangup in fixture 19")
	return 0
}

func TestParseJob(t *testing.T) {
	t.Parallel()
	j := parseJob(fixtureEvent(t, "05-busy", 1588))
	require.Equal(t, "a6d17d55-e84c-49c7-942b-8af89a000b53", j.jobUUID)
	require.Equal(t, "originate", j.command)
	require.False(t, j.accepted)
	require.Equal(t, "USER_BUSY", j.cause)
	require.Equal(t, "-ERR USER_BUSY", j.line)
	require.Equal(t, "e102a1a5-891d-435e-b5ce-eef820d35ed0", j.argUUID, "Job-Command-Arg is URL-decoded")
	require.Empty(t, j.bodyUUID)

	j = parseJob(fixtureEvent(t, "03-answer-consent-press1-record", 1334))
	require.True(t, j.accepted)
	require.Equal(t, "50b976a2-5e58-4f1a-bbe1-07766e35f9f6", j.bodyUUID)

	ce := mapJob("fs1", "e102a1a5-891d-435e-b5ce-eef820d35ed0", parseJob(fixtureEvent(t, "05-busy", 1588)))
	require.Equal(t, controller.EventOriginateFailed, ce.Kind)
	require.Equal(t, "USER_BUSY", ce.HangupCause)
	require.Equal(t, "-ERR USER_BUSY", ce.Detail)
	require.Equal(t, uint64(1588), ce.Sequence)
}

// FuzzDecodeEvent feeds arbitrary bytes as an event-plain body through the
// driver's event path: the parser, the reader's filter, the queue and the
// dispatcher's mapping, job resolution and tracking. Nothing may panic, and
// URL-decoding must agree with url.PathUnescape. Seeds: every event of the
// fixtures below plus testdata/fuzz/FuzzDecodeEvent.
func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{"03-answer-consent-press1-record", "05-busy", "16-max-sessions", "19-sip-no-answer-487"} {
		for _, b := range eventBodies(f, name) {
			f.Add(b)
		}
	}
	s, sink := fuzzSwitch()
	var p eventParser
	f.Fuzz(func(t *testing.T, body []byte) {
		s.onEvent(&p, body)
		s.drain()
		if len(sink.events) > 1024 {
			sink.events = sink.events[:0]
		}
		if want, err := url.PathUnescape(string(body)); err == nil {
			require.Equal(t, want, string(appendUnescaped(nil, body)))
		} else {
			require.Equal(t, string(body), string(appendUnescaped(nil, body)))
		}
	})
}
