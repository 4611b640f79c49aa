package freeswitch

import (
	"net/textproto"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/percipia/eslgo"
	"github.com/stretchr/testify/require"
)

func TestHeaderKeysCanonical(t *testing.T) {
	t.Parallel()
	for wire, key := range map[string]string{
		"Event-Name": hEventName, "Unique-ID": hUniqueID, "Event-Sequence": hSequence,
		"Event-Date-Timestamp": hTimestamp, "Hangup-Cause": hHangupCause,
		"variable_hangup_cause": hVarHangupCause, "variable_sip_term_status": hSIPTermStatus,
		"variable_billsec": hBillsec, "variable_duration": hDuration,
		"Caller-Channel-Answered-Time": hAnsweredTime, "Job-UUID": hJobUUID,
		"Job-Command": hJobCommand, "Job-Command-Arg": hJobCommandArg,
		"DTMF-Digit": hDTMFDigit, "Application": hApplication, "Content-Length": hContentLength,
	} {
		require.Equal(t, textproto.CanonicalMIMEHeaderKey(wire), key, wire)
	}
}

func TestHeaderDecoding(t *testing.T) {
	t.Parallel()
	h := textproto.MIMEHeader{"A": {"Outbound%20Call"}, "B": {"100%zz"}, "C": {"plain"}}
	require.Equal(t, "Outbound Call", header(h, "A"))
	require.Equal(t, "100%zz", header(h, "B"), "eslgo would return \"\"; keep the raw value")
	require.Equal(t, "plain", header(h, "C"))
	require.Equal(t, "", header(h, "D"))
}

// fixtureEvent returns the decoded event of a transcript with the given
// sequence number.
func fixtureEvent(t *testing.T, name string, seq uint64) *eslgo.Event {
	t.Helper()
	for _, b := range eventBodies(t, name) {
		ev, err := decodePlainEvent(b)
		require.NoError(t, err)
		if eventSequence(ev.Headers) == seq {
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
		ev, err := decodePlainEvent(b)
		require.NoError(t, err)
		if header(ev.Headers, hEventName) == "CHANNEL_HANGUP_COMPLETE" && header(ev.Headers, hSIPTermStatus) == "487" {
			return eventSequence(ev.Headers)
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

func TestDecodePlainEventBounds(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		"Event-Name: X\nContent-Length: -1\n\n",
		"Event-Name: X\nContent-Length: 99999999999\n\nab",
		"Event-Name: X\nContent-Length: 5\n\nab",
		"Event-Name: X\nContent-Length: zz\n\n",
		"Bad Header(\n\n",
		" leading: space\n\n",
	} {
		_, err := decodePlainEvent([]byte(body))
		require.Error(t, err, body)
	}
	ev, err := decodePlainEvent([]byte("Event-Name: BACKGROUND_JOB\nContent-Length: 4\n\n+OK\n"))
	require.NoError(t, err)
	require.Equal(t, "+OK\n", string(ev.Body))
}

// FuzzDecodeEvent feeds arbitrary bytes as an event-plain body through the
// decoding eslgo does (net/textproto) and callgate's mapping, filtering and
// job parsing. Nothing may panic. Seeds: every event of the fixtures below
// plus testdata/fuzz/FuzzDecodeEvent.
func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{"03-answer-consent-press1-record", "05-busy", "16-max-sessions", "19-sip-no-answer-487"} {
		for _, b := range eventBodies(f, name) {
			f.Add(b)
		}
	}
	s := &Switch{cfg: Config{Name: "fs1"}, calls: newTracker()}
	s.calls.addNew("e102a1a5-891d-435e-b5ce-eef820d35ed0", nil, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodePlainEvent(body)
		if err != nil {
			return
		}
		_ = eventSequence(ev.Headers)
		if ce, ok := mapChannelEvent("fs1", ev); ok {
			_ = s.calls.has(string(ce.CallID))
		}
		j := parseJob(ev)
		if id, ok := s.calls.resolveJob(j); ok {
			_ = mapJob("fs1", id, j)
		}
	})
}
