package switchsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/callgate/callgate/controller/audio"
)

// The transcripts in testdata/ari are copies of shared/fixtures/asterisk:
// every REST request and response and every events WebSocket frame of a
// real Asterisk 22.10.1. TestARIFixtures replays each file's requests
// against the simulator on the same simulated timeline (a ManualClock
// moved to each request's rel_ms) and compares responses and the events
// of the Stasis side after normalisation (ids kept: the client chooses
// them; timestamps, creation times and channel name counters masked).

type ariRecord struct {
	TMs      int64             `json:"t_ms"`
	RelMs    float64           `json:"rel_ms"`
	Kind     string            `json:"kind"`
	WS       string            `json:"ws"`
	Seq      int               `json:"seq"`
	Method   string            `json:"method"`
	Target   string            `json:"target"`
	Auth     *string           `json:"auth"`
	Label    string            `json:"label"`
	Status   int               `json:"status"`
	Headers  [][2]string       `json:"headers"`
	Body     json.RawMessage   `json:"body"`
	BodyLen  int               `json:"body_len"`
	Raw      string            `json:"raw"`
	Query    map[string]string `json:"query"`
	Scenario string            `json:"scenario"`
	End      string            `json:"scenario_end"`
}

func loadARIFixture(t *testing.T, name string) []ariRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ari", name+".jsonl"))
	require.NoError(t, err)
	var out []ariRecord
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r ariRecord
		require.NoError(t, json.Unmarshal(line, &r), string(line))
		out = append(out, r)
	}
	return out
}

var (
	reChanSeq = regexp.MustCompile(`^((?:Local|Recorder|Snoop|PJSIP|SIP)/.*-)[0-9a-f]{8}(;[12])?$`)
	ariMasked = map[string]bool{"timestamp": true, "creationtime": true, "startup_time": true, "last_reload_time": true}
)

// normARI masks what differs from run to run in a JSON value.
func normARI(v any, ignore map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if ariMasked[k] || ignore[k] {
				x[k] = "*"
				continue
			}
			x[k] = normARI(val, ignore)
		}
		return x
	case []any:
		for i := range x {
			x[i] = normARI(x[i], ignore)
		}
		return x
	case string:
		if m := reChanSeq.FindStringSubmatch(x); m != nil {
			return m[1] + "N" + m[2]
		}
		return x
	}
	return v
}

func normJSON(t *testing.T, s string, ignore map[string]bool) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	b, err := json.Marshal(normARI(v, ignore))
	require.NoError(t, err)
	return string(b)
}

var (
	reRawTime = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000"`)
	reRawSeq  = regexp.MustCompile(`((?:Local|Recorder|Snoop|PJSIP|SIP)/[^"]*-)[0-9a-f]{8}((?:;[12])?")`)
)

// rawNorm masks timestamps and channel name counters in JSON text, leaving
// every byte else (member order at every depth, escaping) to compare.
func rawNorm(s string) string {
	s = reRawTime.ReplaceAllString(s, `"T"`)
	return reRawSeq.ReplaceAllString(s, "${1}N$2")
}

// keyOrder lists an object's member names in order (Asterisk's order
// matters to nobody but is part of being faithful).
func keyOrder(t *testing.T, s string) []string {
	dec := json.NewDecoder(strings.NewReader(s))
	tok, err := dec.Token()
	require.NoError(t, err)
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

type ariHarness struct {
	t     *testing.T
	s     *Sim
	clock *ManualClock
	start time.Time
	base  string
	ws    *websocket.Conn
	in    chan string
}

func newARIHarness(t *testing.T, cfg Config) *ariHarness {
	t.Helper()
	start := time.Date(2026, 11, 21, 8, 27, 0, 0, time.UTC)
	clock := NewManualClock(start)
	cfg.Clock = clock
	s := New(cfg)
	require.NoError(t, s.ListenARI("127.0.0.1:0"))
	t.Cleanup(func() { _ = s.Close() })
	return &ariHarness{t: t, s: s, clock: clock, start: start, base: "http://" + s.ARIAddr()}
}

// connect opens the events WebSocket at target (path and query).
func (h *ariHarness) connect(target string) {
	h.t.Helper()
	cfg, err := websocket.NewConfig("ws://"+h.s.ARIAddr()+target, "http://localhost")
	require.NoError(h.t, err)
	ws, err := websocket.DialConfig(cfg)
	require.NoError(h.t, err)
	h.ws = ws
	h.in = make(chan string, 1024)
	go func() {
		defer close(h.in)
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			h.in <- msg
		}
	}()
	h.t.Cleanup(func() { _ = ws.Close() })
	h.waitConns(1) // the app is registered once the server has the connection
}

func (h *ariHarness) waitConns(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(h.t, h.s.WaitARIConnections(ctx, n))
}

// drain returns every frame sent so far (up to a barrier frame).
func (h *ariHarness) drain() []string {
	h.t.Helper()
	const mark = `{"type":"__barrier__"}`
	h.s.ariMark(mark)
	var out []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-h.in:
			require.True(h.t, ok, "events WebSocket closed")
			if m == mark {
				return out
			}
			out = append(out, m)
		case <-timeout:
			h.t.Fatalf("no barrier frame; got %d frames", len(out))
		}
	}
}

func (h *ariHarness) do(method, target, auth string, body []byte) *http.Response {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+target, rd)
	require.NoError(h.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(auth, "basic:") {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(strings.TrimPrefix(auth, "basic:"))))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	return resp
}

// rawHeaderNames reads a response's header names as sent.
func rawHandshake(t *testing.T, addr, target string) (status int, headers [][2]string, body string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://localhost\r\n\r\n", target, addr)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	_, err = fmt.Sscanf(line, "HTTP/1.1 %d", &status)
	require.NoError(t, err)
	n := 0
	for {
		l, err := br.ReadString('\n')
		require.NoError(t, err)
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ": ")
		headers = append(headers, [2]string{k, v})
		if strings.EqualFold(k, "Content-Length") {
			_, _ = fmt.Sscanf(v, "%d", &n)
		}
	}
	if n > 0 {
		b := make([]byte, n)
		_, err = io.ReadFull(br, b)
		require.NoError(t, err)
		body = string(b)
	}
	return status, headers, body
}

func headerVal(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// ariEventKey is an event as the comparison sees it.
func ariEventSubject(t *testing.T, raw string) string {
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &m))
	for _, k := range []string{"channel", "peer"} {
		if c, ok := m[k].(map[string]any); ok {
			return c["id"].(string)
		}
	}
	return ""
}

type ariFixtureOpts struct {
	ignore map[string]bool // members masked in events
	skipB  bool            // do not compare the ;2 half's own sequence
}

func replayARIFixture(t *testing.T, name string, opts ariFixtureOpts) {
	recs := loadARIFixture(t, name)
	h := newARIHarness(t, Config{})
	var wantEvents []string
	type pending struct {
		req  ariRecord
		resp *http.Response
		body []byte
	}
	sent := map[int]pending{}
	var wsTarget string
	for _, r := range recs {
		switch r.Kind {
		case "meta":
			switch r.WS {
			case "connect":
				wsTarget = r.Target
			case "handshake":
				if r.Status == http.StatusSwitchingProtocols {
					if h.ws == nil {
						st, hs, _ := rawHandshake(t, h.s.ARIAddr(), wsTarget)
						require.Equal(t, 101, st)
						var names, want []string
						for _, x := range hs {
							names = append(names, x[0])
						}
						for _, x := range r.Headers {
							want = append(want, x[0])
						}
						require.Equal(t, want, names, "handshake headers")
						h.waitConns(0) // the raw one goes away
						h.connect(wsTarget)
					}
					continue
				}
				st, hs, body := rawHandshake(t, h.s.ARIAddr(), wsTarget)
				require.Equal(t, r.Status, st, "handshake %s", wsTarget)
				var want string
				require.NoError(t, json.Unmarshal(r.Body, &want))
				require.Equal(t, want, body)
				for _, x := range r.Headers {
					if x[0] == "Date" {
						continue
					}
					v, ok := headerVal(hs, x[0])
					require.True(t, ok, "handshake header %s missing in %v", x[0], hs)
					require.Equal(t, x[1], v)
				}
			}
		case "rest_req":
			h.clock.AdvanceTo(h.start.Add(time.Duration(r.RelMs * float64(time.Millisecond))))
			auth := ""
			if r.Auth != nil {
				auth = *r.Auth
			}
			var body []byte
			if len(r.Body) > 0 && string(r.Body) != "null" {
				body = r.Body
			}
			resp := h.do(r.Method, r.Target, auth, body)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			sent[r.Seq] = pending{req: r, resp: resp, body: b}
		case "rest_resp":
			p := sent[r.Seq]
			require.NotNil(t, p.resp, "response %d without request", r.Seq)
			what := fmt.Sprintf("#%d %s %s (%s)", r.Seq, p.req.Method, p.req.Target, p.req.Label)
			require.Equal(t, r.Status, p.resp.StatusCode, "%s: %s", what, p.body)
			for _, hd := range r.Headers {
				switch hd[0] {
				case "Content-type", "Content-Type", "Location", "Allow", "WWW-Authenticate", "Server", "Cache-Control":
					require.Equal(t, hd[1], p.resp.Header.Get(hd[0]), "%s header %s", what, hd[0])
				case "Content-Length":
					// Go's server drops Content-Length: 0 from a 204 (RFC 9110); Asterisk sends it.
					if r.BodyLen == 0 && r.Status != http.StatusNoContent && !strings.Contains(p.req.Target, "/play?") {
						require.Equal(t, hd[1], p.resp.Header.Get(hd[0]), "%s header %s", what, hd[0])
					}
				}
			}
			if r.BodyLen > 0 {
				f, err := audio.ParseWAV(bytes.NewReader(p.body))
				require.NoError(t, err, what)
				require.Equal(t, 1, f.Channels)
				require.Equal(t, 8000, f.SampleRate)
				if r.BodyLen == 44 {
					require.Len(t, p.body, 44, what)
				}
				continue
			}
			var want string
			require.NoError(t, json.Unmarshal(r.Body, &want))
			if want == "" {
				require.Empty(t, string(p.body), what)
				continue
			}
			var ignore map[string]bool
			if strings.Contains(p.req.Target, "/play?") {
				ignore = map[string]bool{"state": true} // "queued" or "playing": races in Asterisk
			}
			require.Equal(t, normJSON(t, want, ignore), normJSON(t, string(p.body), ignore), what)
			if ignore == nil {
				require.Equal(t, rawNorm(want), rawNorm(string(p.body)), what+" bytes")
			}
			require.Equal(t, keyOrder(t, want), keyOrder(t, string(p.body)), what+" member order")
		case "ws":
			wantEvents = append(wantEvents, r.Raw)
		}
	}
	end := recs[len(recs)-1].RelMs
	h.clock.AdvanceTo(h.start.Add(time.Duration(end * float64(time.Millisecond))))
	var got []string
	if h.ws != nil {
		got = h.drain()
	}
	compareARIEvents(t, wantEvents, got, opts)
	compareARITiming(t, time.UnixMilli(recs[0].TMs), wantEvents, h.start, got)
}

// compareARITiming checks that each Stasis-side event happens at about the
// captured time after the scenario began (within 500 ms: the model's
// timings are not the real ones to the millisecond).
func compareARITiming(t *testing.T, wantBase time.Time, want []string, gotBase time.Time, got []string) {
	t.Helper()
	offsets := func(base time.Time, evs []string) (out []time.Duration) {
		for _, e := range evs {
			if strings.HasSuffix(ariEventSubject(t, e), ";2") {
				continue
			}
			var m struct {
				Timestamp string `json:"timestamp"`
			}
			require.NoError(t, json.Unmarshal([]byte(e), &m))
			ts, err := time.Parse(ariTimeLayout, m.Timestamp)
			require.NoError(t, err)
			out = append(out, ts.Sub(base))
		}
		return out
	}
	w, g := offsets(wantBase, want), offsets(gotBase, got)
	require.Len(t, g, len(w))
	for i := range w {
		d := w[i] - g[i]
		require.True(t, d < 500*time.Millisecond && d > -500*time.Millisecond,
			"event %d at %s, captured at %s", i, g[i], w[i])
	}
}

// compareARIEvents compares the events about the Stasis side (every
// channel but a Local ;2 half, and playbacks, recordings, bridges) in
// order, member for member; the ;2 half's events are compared in their
// own order (type, state, cause) unless skipB.
func compareARIEvents(t *testing.T, want, got []string, opts ariFixtureOpts) {
	t.Helper()
	split := func(evs []string) (main []string, b []string, orders [][]string, raws []string) {
		for _, e := range evs {
			subj := ariEventSubject(t, e)
			if strings.HasSuffix(subj, ";2") {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(e), &m))
				ch := m["channel"].(map[string]any)
				b = append(b, fmt.Sprintf("%v %v cause=%v soft=%v", m["type"], ch["state"], m["cause"], m["soft"]))
				continue
			}
			main = append(main, normJSON(t, e, opts.ignore))
			orders = append(orders, keyOrder(t, e))
			raws = append(raws, rawNorm(e))
		}
		return
	}
	wm, wb, wo, wr := split(want)
	gm, gb, gorder, gr := split(got)
	types := func(l []string) string {
		var out []string
		for _, e := range l {
			var m map[string]any
			_ = json.Unmarshal([]byte(e), &m)
			out = append(out, fmt.Sprint(m["type"]))
		}
		return strings.Join(out, " ")
	}
	t.Logf("comparing %d Stasis-side and %d ;2 events", len(wm), len(wb))
	require.Equal(t, types(wm), types(gm), "Stasis-side event types")
	for i := range wm {
		require.Equal(t, wm[i], gm[i], "Stasis-side event %d", i)
		require.Equal(t, wo[i], gorder[i], "member order of event %d", i)
		if opts.ignore == nil {
			require.Equal(t, wr[i], gr[i], "bytes of event %d", i)
		}
	}
	if !opts.skipB {
		require.Equal(t, wb, gb, ";2 half events, in their own order")
	}
}

func TestARIFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "ari", "*.jsonl"))
	require.NoError(t, err)
	require.Len(t, files, 27)
	opts := map[string]ariFixtureOpts{
		// Echo() hands digits back with jitter-dependent durations.
		"14_send_dtmf_echo": {ignore: map[string]bool{"duration_ms": true}},
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			replayARIFixture(t, name, opts[name])
		})
	}
}
