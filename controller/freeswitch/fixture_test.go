package freeswitch

import (
	"bufio"
	"bytes"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixtureDir holds the real FreeSWITCH transcripts, beside the repository
// (../shared/fixtures/freeswitch from its root); CALLGATE_FS_FIXTURES
// overrides it.
func fixtureDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("CALLGATE_FS_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "fixtures", "freeswitch")
	}
	_, err := os.Stat(filepath.Join(dir, "05-busy.recv"))
	require.NoError(tb, err, "FreeSWITCH fixtures not found; set CALLGATE_FS_FIXTURES")
	return dir
}

// fixtureFrame is one ESL frame of a transcript: its outer headers, body and
// the exact bytes it took on the wire. loadFrames splits transcripts with
// net/textproto, independently of the driver's frameReader, so tests can
// compare the two.
type fixtureFrame struct {
	headers textproto.MIMEHeader
	body    []byte
	raw     []byte
}

func (f fixtureFrame) contentType() string { return f.headers.Get("Content-Type") }
func (f fixtureFrame) isEvent() bool       { return f.contentType() == "text/event-plain" }

// isJobReply reports whether f is the reply to a bgapi.
func (f fixtureFrame) isJobReply() bool { return f.headers.Get("Job-Uuid") != "" }

// loadFrames splits NAME.recv into frames (LF framing, Content-Length
// bodies).
func loadFrames(tb testing.TB, name string) []fixtureFrame {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir(tb), name+".recv"))
	require.NoError(tb, err)
	var frames []fixtureFrame
	for len(data) > 0 {
		end := bytes.Index(data, []byte("\n\n"))
		require.GreaterOrEqual(tb, end, 0, "truncated frame in %s", name)
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(data[:end+2]))).ReadMIMEHeader()
		require.NoError(tb, err)
		n := end + 2
		var body []byte
		if cl := h.Get("Content-Length"); cl != "" {
			l, err := strconv.Atoi(cl)
			require.NoError(tb, err)
			body = data[n : n+l]
			n += l
		}
		frames = append(frames, fixtureFrame{headers: h, body: body, raw: data[:n]})
		data = data[n:]
	}
	return frames
}

// eventBodies returns the text/event-plain bodies of a transcript.
func eventBodies(tb testing.TB, name string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, f := range loadFrames(tb, name) {
		if f.isEvent() {
			out = append(out, f.body)
		}
	}
	return out
}

// apiBody returns the body of the n-th api/response of a transcript.
func apiBody(tb testing.TB, name string, n int) string {
	tb.Helper()
	for _, f := range loadFrames(tb, name) {
		if f.contentType() == "api/response" {
			if n == 0 {
				return string(f.body)
			}
			n--
		}
	}
	tb.Fatalf("%s has no api/response #%d", name, n)
	return ""
}

// fixtureNames lists every transcript, NAME for NAME.recv.
func fixtureNames(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir(tb), "*.recv"))
	require.NoError(tb, err)
	require.NotEmpty(tb, paths)
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".recv")
	}
	return names
}

// parseEvent parses an event-plain body with the driver's parser.
func parseEvent(tb testing.TB, body []byte) *event {
	tb.Helper()
	var p eventParser
	require.NoError(tb, p.parse(body))
	ev := p.event()
	return &ev
}
