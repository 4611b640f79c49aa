package switchsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The transcripts in testdata/freeswitch are copies of
// shared/fixtures/freeswitch: every socket write and read of a real
// FreeSWITCH 1.10.12 session. TestFixtureReplay sends the same bytes to the
// simulator on the same simulated timeline and compares what it answers
// with what FreeSWITCH answered, after normalisation (normalize_test.go).

// record is one line of a .jsonl transcript.
type record struct {
	TMs  float64 `json:"t_ms"`
	Dir  string  `json:"dir"`
	Data string  `json:"data"`
}

func loadTranscript(t *testing.T, name string) []record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "freeswitch", name+".jsonl"))
	require.NoError(t, err)
	var out []record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r record
		require.NoError(t, json.Unmarshal(line, &r))
		r.Data = latin1(r.Data)
		out = append(out, r)
	}
	return out
}

// latin1 turns the transcript's latin-1 text back into the bytes sent.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// recvFrames parses everything FreeSWITCH sent in a transcript.
func recvFrames(t *testing.T, recs []record) []wireFrame {
	t.Helper()
	var stream bytes.Buffer
	for _, r := range recs {
		if r.Dir == "recv" {
			stream.WriteString(r.Data)
		}
	}
	return parseAllFrames(t, stream.Bytes())
}

func parseAllFrames(t *testing.T, b []byte) []wireFrame {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	var out []wireFrame
	for {
		f, err := readFrame(r)
		if errors.Is(err, io.EOF) && len(f.headers) == 0 {
			return out
		}
		require.NoError(t, err)
		out = append(out, f)
	}
}

// replayStart is when the captured session began on FreeSWITCH's clock,
// derived from the first event's timestamp, so that the replay has the same
// phase within each second (ring timeouts count whole seconds).
func replayStart(t *testing.T, recs []record) time.Time {
	t.Helper()
	for _, r := range recs {
		if r.Dir != "recv" {
			continue
		}
		i := strings.Index(r.Data, "Event-Date-Timestamp: ")
		if i < 0 {
			continue
		}
		digits := r.Data[i+len("Event-Date-Timestamp: "):]
		digits = digits[:strings.IndexByte(digits, '\n')]
		us, err := strconv.ParseInt(digits, 10, 64)
		require.NoError(t, err)
		return time.UnixMicro(us).Add(-time.Duration(r.TMs * float64(time.Millisecond)))
	}
	return time.Date(2026, 11, 21, 8, 15, 0, 0, time.UTC)
}

// replay sends a transcript's writes to a fresh simulator at the same
// simulated times and returns every frame it sent back.
func replay(t *testing.T, recs []record) []wireFrame {
	t.Helper()
	start := replayStart(t, recs)
	clock := NewManualClock(start)
	s := newSim(t, Config{Clock: clock, Hostname: "vm", MaxSPS: 30})
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer nc.Close()
	r := bufio.NewReader(nc)
	var got []wireFrame
	read := func() (wireFrame, error) {
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
		return readFrame(r)
	}
	f, err := read()
	require.NoError(t, err)
	got = append(got, f)
	at := func(ms float64) time.Time { return start.Add(time.Duration(ms * float64(time.Millisecond))) }
	last := 0.0
	for _, rec := range recs {
		last = max(last, rec.TMs)
		if rec.Dir != "send" {
			continue
		}
		clock.AdvanceTo(at(rec.TMs))
		_, err := nc.Write([]byte(rec.Data))
		require.NoError(t, err)
		for {
			f, err := read()
			require.NoError(t, err, "waiting for the reply to %q", rec.Data)
			got = append(got, f)
			if f.isEvent() {
				continue
			}
			if text := f.get("Reply-Text"); text == "+OK bye" || text == "-ERR invalid" {
				for {
					f, err := read()
					if err != nil {
						require.ErrorIs(t, err, io.EOF, "the simulator must close after the disconnect notice")
						return got
					}
					got = append(got, f)
				}
			}
			break
		}
	}
	// Let behaviour run to the end of the capture, then flush with a marker.
	clock.AdvanceTo(at(last + 200))
	_, err = nc.Write([]byte("api uuid_exists replay-marker\n\n"))
	require.NoError(t, err)
	for {
		f, err := read()
		require.NoError(t, err)
		if !f.isEvent() {
			require.Equal(t, "false", f.body, "marker reply")
			return got
		}
		got = append(got, f)
	}
}

var replayedTranscripts = []string{
	"01-auth-ok-api", "02-auth-bad", "03-answer-consent-press1-record", "04-consent-press2",
	"04b-consent-no-key", "04c-consent-hangup-mid-prompt", "05-busy", "06-no-answer", "07-rejected-603",
	"08-unallocated", "09-sync-api-originate-busy", "10-peer-hangs-up-after-2s", "11-ring-then-answer",
	"12-show-channels-live", "13-event-json", "14-filter-noevents", "15-sps-limit", "16-max-sessions",
	"17-bad-originate",
}

func TestFixtureReplay(t *testing.T) {
	t.Parallel()
	for _, name := range replayedTranscripts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recs := loadTranscript(t, name)
			var sends []string
			for _, r := range recs {
				if r.Dir == "send" {
					sends = append(sends, r.Data)
				}
			}
			want, err := normalize(recvFrames(t, recs), sends)
			require.NoError(t, err)
			simFrames := replay(t, recs)
			got, err := normalize(simFrames, sends)
			require.NoError(t, err)

			require.Equal(t, want.replies, got.replies, "replies, in order")
			wantEvents, gotEvents := want.byRole(), got.byRole()
			require.ElementsMatch(t, keys(wantEvents), keys(gotEvents), "channels and jobs with events")
			for role, evs := range wantEvents {
				require.Equal(t, evs, gotEvents[role], "events of %s, in order", role)
			}
			for _, role := range want.roles() {
				require.Equal(t, want.projection(role), got.projection(role),
					"order of %s's events against replies and background jobs", role)
			}
			requireIncreasingSequence(t, simFrames)
		})
	}
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// requireIncreasingSequence checks the simulator numbers events in the
// order it sends them.
func requireIncreasingSequence(t *testing.T, frames []wireFrame) {
	t.Helper()
	prev := uint64(0)
	for _, f := range frames {
		if !f.isEvent() {
			continue
		}
		hs, err := eventHeaders(f)
		require.NoError(t, err)
		for _, h := range hs {
			if h.Name == "Event-Sequence" {
				n, err := strconv.ParseUint(strings.Trim(h.Value, `"`), 10, 64)
				require.NoError(t, err)
				require.Greater(t, n, prev, "Event-Sequence must increase")
				prev = n
			}
		}
	}
}
