package switchsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/callgate/callgate/controller/audio"
)

// Behaviour the captures do not cover on their own: faults, real
// recording files, WAV prompts, SIP endpoints, create+dial answered,
// bridges of two calls, inbound channels.

const ariEventsTarget = "/ari/events?app=callgate&api_key=callgate:callgate&subscribeAll=false"

type ariEvent map[string]any

func (e ariEvent) typ() string { return e["type"].(string) }

func (e ariEvent) chanID() string {
	for _, k := range []string{"channel", "peer"} {
		if c, ok := e[k].(map[string]any); ok {
			return c["id"].(string)
		}
	}
	return ""
}

func (e ariEvent) chanState() string {
	for _, k := range []string{"channel", "peer"} {
		if c, ok := e[k].(map[string]any); ok {
			return c["state"].(string)
		}
	}
	return ""
}

func (h *ariHarness) events() []ariEvent {
	h.t.Helper()
	var out []ariEvent
	for _, raw := range h.drain() {
		var e ariEvent
		require.NoError(h.t, json.Unmarshal([]byte(raw), &e))
		out = append(out, e)
	}
	return out
}

// summary lists "Type[detail]" for the events about id (or with no channel).
func summary(evs []ariEvent, id string) []string {
	var out []string
	for _, e := range evs {
		cid := e.chanID()
		if cid != "" && cid != id {
			continue
		}
		d := e.typ()
		switch d {
		case "Dial":
			d += ":" + e["dialstatus"].(string)
		case "ChannelStateChange":
			d += ":" + e.chanState()
		case "ChannelDestroyed", "ChannelHangupRequest":
			d += ":" + jsonNum(e["cause"])
		case "ChannelDtmfReceived":
			d += ":" + e["digit"].(string)
		case "PlaybackFinished":
			d += ":" + e["playback"].(map[string]any)["state"].(string)
		case "RecordingFinished", "RecordingFailed":
			d += ":" + e["recording"].(map[string]any)["state"].(string)
		}
		out = append(out, d)
	}
	return out
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (h *ariHarness) call(method, target string) (int, string) {
	h.t.Helper()
	resp := h.do(method, target, "basic:callgate:callgate", nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp.StatusCode, string(b)
}

func (h *ariHarness) advance(d time.Duration) { h.clock.Advance(d) }

func TestARIFaultsAndObservation(t *testing.T) {
	h := newARIHarness(t, Config{})
	h.connect(ariEventsTarget)
	st, _ := h.call("POST", "/ari/channels?endpoint=Local/1005@cgtest&app=callgate&channelId=f1")
	require.Equal(t, 200, st)
	require.Equal(t, 1, h.s.Originated())
	require.Equal(t, 2, h.s.ChannelCount())
	info, ok := h.s.Channel("f1")
	require.True(t, ok)
	require.Equal(t, "Up", info.State)
	require.True(t, info.Answered)

	// HangupChannel: the far end hangs up with the cause.
	require.True(t, h.s.HangupChannel("f1", "USER_BUSY"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.s.WaitChannelGone(ctx, "f1"))
	require.NoError(t, h.s.WaitChannelGone(ctx, "f1;2"))
	evs := h.events()
	require.Equal(t, []string{"Dial:", "ChannelStateChange:Up", "Dial:ANSWER", "ChannelVarset", "StasisStart",
		"ChannelHangupRequest:17", "StasisEnd", "ChannelVarset", "ChannelDestroyed:17"}, summary(evs, "f1"))
	require.False(t, h.s.HangupChannel("f1", "NORMAL_CLEARING"))

	// DropConnections cuts the WebSocket without a close frame; REST stays.
	h.s.DropConnections()
	for range h.in {
	}
	st, _ = h.call("GET", "/ari/asterisk/ping")
	require.Equal(t, 200, st)
	// Refused handshakes while SetRefuseConnections(true).
	h.s.SetRefuseConnections(true)
	code, _, _ := rawHandshake(t, h.s.ARIAddr(), ariEventsTarget)
	require.Equal(t, http.StatusServiceUnavailable, code)
	h.s.SetRefuseConnections(false)
	h.connect(ariEventsTarget)
	st, _ = h.call("POST", "/ari/channels?endpoint=Local/1005@cgtest&app=callgate&channelId=f2")
	require.Equal(t, 200, st)
	require.Contains(t, summary(h.events(), "f2"), "StasisStart")
	require.Equal(t, 2, h.s.Originated())
}

func TestARIUnregisteredAppWhileDisconnected(t *testing.T) {
	h := newARIHarness(t, Config{})
	st, _ := h.call("POST", "/ari/channels?endpoint=Local/1005@cgtest&app=callgate&channelId=u1")
	require.Equal(t, 200, st)
	_, ok := h.s.Channel("u1")
	require.False(t, ok, "Stasis() fails without a connected app; the call is gone")
	st, body := h.call("GET", "/ari/applications/callgate")
	require.Equal(t, 404, st, body)
}

func TestARIRecordingFileMutePause(t *testing.T) {
	h := newARIHarness(t, Config{ARIRecordingDir: t.TempDir()})
	h.connect(ariEventsTarget)
	st, _ := h.call("POST", "/ari/channels?endpoint=Local/1011@cgtest&app=callgate&channelId=r1")
	require.Equal(t, 200, st)
	// 1011: answer, 0.5 s answer wait, Wait(1.5), SendDTMF(1) (0.45 s), then MOH.
	h.advance(3 * time.Second) // MOH since 2.45 s
	st, body := h.call("POST", "/ari/channels/r1/record?name=sub/r1&format=wav&ifExists=overwrite")
	require.Equal(t, 201, st, body)
	h.advance(2 * time.Second)
	require.Equal(t, 204, first(h.call("POST", "/ari/recordings/live/sub%2Fr1/pause")))
	_, body = h.call("GET", "/ari/recordings/live/sub%2Fr1")
	require.Contains(t, body, `"state":"paused"`)
	h.advance(1 * time.Second)
	require.Equal(t, 204, first(h.call("DELETE", "/ari/recordings/live/sub%2Fr1/pause")))
	require.Equal(t, 204, first(h.call("POST", "/ari/recordings/live/sub%2Fr1/mute")))
	h.advance(1 * time.Second)
	require.Equal(t, 204, first(h.call("DELETE", "/ari/recordings/live/sub%2Fr1/mute")))
	h.advance(1 * time.Second)
	require.Equal(t, 204, first(h.call("POST", "/ari/recordings/live/sub%2Fr1/stop")))
	evs := h.events()
	var fin ariEvent
	for _, e := range evs {
		if e.typ() == "RecordingFinished" {
			fin = e
		}
	}
	require.NotNil(t, fin)
	// Heard 5 s minus 1 s paused = 4 s; the file leaves the muted second out too.
	require.Equal(t, "4", jsonNum(fin["recording"].(map[string]any)["duration"]))
	f, err := audio.ParseWAVFile(filepath.Join(h.s.ARIRecordingDir(), "sub", "r1.wav"))
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, f.Duration())
	st, body = h.call("GET", "/ari/recordings/stored")
	require.Equal(t, 200, st)
	require.Equal(t, `[{"name":"sub/r1","format":"wav"}]`, body)
	resp := h.do("GET", "/ari/recordings/stored/sub%2Fr1/file", "basic:callgate:callgate", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
	require.Len(t, b, 44+3*16000)
	// ifExists=fail (the default) refuses an existing name.
	st, _ = h.call("POST", "/ari/channels/r1/record?name=sub/r1&format=wav")
	require.Equal(t, 409, st)
	require.Equal(t, 204, first(h.call("DELETE", "/ari/recordings/stored/sub%2Fr1")))
	require.Equal(t, 404, first(h.call("GET", "/ari/recordings/stored/sub%2Fr1")))
	// A recording canceled with DELETE leaves no file.
	require.Equal(t, 201, first(h.call("POST", "/ari/channels/r1/record?name=r2&format=wav")))
	require.Equal(t, 204, first(h.call("DELETE", "/ari/recordings/live/r2")))
	require.Equal(t, 404, first(h.call("GET", "/ari/recordings/stored/r2")))
	require.Contains(t, summary(h.events(), "r1"), "RecordingFinished:canceled")
}

func first(a int, _ string) int { return a }

func TestARIRecordingStopsWithChannel(t *testing.T) {
	h := newARIHarness(t, Config{})
	h.connect(ariEventsTarget)
	require.Equal(t, 200, first(h.call("POST", "/ari/channels?endpoint=Local/1006@cgtest&app=callgate&channelId=h1")))
	require.Equal(t, 201, first(h.call("POST", "/ari/channels/h1/record?name=h1&format=wav&maxDurationSeconds=30")))
	require.Equal(t, 201, first(h.call("POST", "/ari/channels/h1/play?media=tone:440&playbackId=p1")))
	h.advance(3 * time.Second) // 1006 hangs up after 2.5 s
	require.Equal(t, []string{"Dial:", "ChannelStateChange:Up", "Dial:ANSWER", "ChannelVarset", "StasisStart",
		"RecordingStarted", "PlaybackStarted", "ChannelHangupRequest:16", "PlaybackFinished:done",
		"RecordingFinished:done", "StasisEnd", "ChannelVarset", "ChannelDestroyed:16"}, summary(h.events(), "h1"))
	require.Equal(t, 200, first(h.call("GET", "/ari/recordings/stored/h1")))
	require.Equal(t, 404, first(h.call("GET", "/ari/playbacks/p1")))
}

func TestARIPlaybackWAVLength(t *testing.T) {
	h := newARIHarness(t, Config{})
	h.connect(ariEventsTarget)
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "prompt.wav"))
	require.NoError(t, err)
	require.NoError(t, audio.WriteToneWAV(out, audio.Format{Channels: 1, SampleRate: 8000}, 2500*time.Millisecond, []float64{440}))
	require.NoError(t, out.Close())
	require.Equal(t, 200, first(h.call("POST", "/ari/channels?endpoint=Local/1005@cgtest&app=callgate&channelId=w1")))
	st, body := h.call("POST", "/ari/channels/w1/play/pw?media=sound:"+filepath.Join(dir, "prompt"))
	require.Equal(t, 201, st, body)
	st, _ = h.call("POST", "/ari/channels/w1/play/pq?media=sound:beep")
	require.Equal(t, 201, st)
	_, body = h.call("GET", "/ari/playbacks/pq")
	require.Contains(t, body, `"state":"queued"`)
	h.advance(2499 * time.Millisecond)
	require.NotContains(t, summary(h.events(), "w1"), "PlaybackFinished:done")
	h.advance(time.Millisecond)
	require.Equal(t, []string{"PlaybackFinished:done", "PlaybackStarted"}, summary(h.events(), "w1"))
	h.advance(time.Second)
	require.Equal(t, []string{"PlaybackFinished:done"}, summary(h.events(), "w1"))
	require.Equal(t, 201, first(h.call("POST", "/ari/channels/w1/play/px?media=recording:nope")))
	require.Equal(t, []string{"PlaybackStarted", "PlaybackFinished:failed"}, summary(h.events(), "w1"))
}

func TestARISIPEndpoint(t *testing.T) {
	h := newARIHarness(t, Config{})
	h.connect(ariEventsTarget)
	st, body := h.call("POST", "/ari/channels?endpoint=PJSIP/15551231001@carrier&app=callgate&channelId=s1")
	require.Equal(t, 200, st, body)
	require.Contains(t, body, `"name":"PJSIP/carrier-`)
	require.Equal(t, 1, h.s.ChannelCount(), "the far end is not a channel")
	h.advance(2500 * time.Millisecond)
	require.Equal(t, []string{"Dial:", "ChannelStateChange:Up", "Dial:ANSWER", "ChannelVarset", "StasisStart",
		"ChannelDtmfReceived:1"}, summary(h.events(), "s1"))
	require.Equal(t, 204, first(h.call("DELETE", "/ari/channels/s1")))
	require.Equal(t, []string{"ChannelHangupRequest:32", "StasisEnd", "ChannelVarset", "ChannelDestroyed:16"}, summary(h.events(), "s1"))

	require.Equal(t, 200, first(h.call("POST", "/ari/channels?endpoint=PJSIP/1003@carrier&app=callgate&channelId=s2")))
	require.Equal(t, []string{"Dial:", "Dial:BUSY", "ChannelDestroyed:17"}, summary(h.events(), "s2"))
	require.Equal(t, 200, first(h.call("POST", "/ari/channels?endpoint=PJSIP/5550000@carrier&app=callgate&channelId=s3")))
	require.Equal(t, []string{"Dial:", "Dial:NOANSWER", "ChannelDestroyed:1"}, summary(h.events(), "s3"))
}

func TestARICreateDialAnswered(t *testing.T) {
	h := newARIHarness(t, Config{})
	h.connect(ariEventsTarget)
	require.Equal(t, 200, first(h.call("POST", "/ari/channels/create?endpoint=Local/1001@cgtest&app=callgate&channelId=c1")))
	require.Equal(t, 204, first(h.call("POST", "/ari/channels/c1/dial?timeout=30")))
	require.Equal(t, 409, first(h.call("POST", "/ari/channels/c1/dial")))
	h.advance(2500 * time.Millisecond)
	require.Equal(t, []string{"ChannelDialplan", "ChannelVarset", "StasisStart", "Dial:", "ChannelStateChange:Up",
		"Dial:ANSWER", "ChannelDtmfReceived:1"}, summary(h.events(), "c1"))
	// Hung up while a second call still rings: Dial CANCEL.
	require.Equal(t, 200, first(h.call("POST", "/ari/channels/create?endpoint=Local/1004@cgtest&app=callgate&channelId=c2")))
	require.Equal(t, 204, first(h.call("POST", "/ari/channels/c2/dial")))
	require.Equal(t, 204, first(h.call("DELETE", "/ari/channels/c2?reason_code=21")))
	require.Equal(t, []string{"ChannelDialplan", "ChannelVarset", "StasisStart", "Dial:", "ChannelStateChange:Ringing",
		"Dial:RINGING", "ChannelHangupRequest:32", "StasisEnd", "ChannelVarset", "Dial:CANCEL", "ChannelDestroyed:21"},
		summary(h.events(), "c2"))
	require.Equal(t, 400, first(h.call("DELETE", "/ari/channels/c1?reason=bogus")))
}

func TestARIBridgeTwoCalls(t *testing.T) {
	h := newARIHarness(t, Config{})
	h.connect(ariEventsTarget)
	for _, id := range []string{"b1", "b2"} {
		require.Equal(t, 200, first(h.call("POST", "/ari/channels?endpoint=Local/1005@cgtest&app=callgate&channelId="+id)))
	}
	st, body := h.call("POST", "/ari/bridges?type=mixing&bridgeId=br&name=two")
	require.Equal(t, 200, st, body)
	require.Equal(t, 204, first(h.call("POST", "/ari/bridges/br/addChannel?channel=b1,b2")))
	require.Equal(t, 400, first(h.call("POST", "/ari/bridges/br/addChannel?channel=nope")))
	evs := h.events()
	var peers []string
	for _, e := range evs {
		if e.typ() == "ChannelVarset" && e["variable"] == "BRIDGEPEER" {
			peers = append(peers, e.chanID()+"="+strings.Split(e["value"].(string), "-")[0])
		}
	}
	require.Equal(t, []string{"b1=Local/1005@cgtest", "b2=Local/1005@cgtest"}, peers)
	_, body = h.call("GET", "/ari/bridges/br")
	require.Contains(t, body, `"channels":["b1","b2"]`)
	require.Equal(t, 204, first(h.call("POST", "/ari/bridges/br/removeChannel?channel=b2")))
	require.Equal(t, 422, first(h.call("POST", "/ari/bridges/br/removeChannel?channel=b2")))
	require.Equal(t, 204, first(h.call("DELETE", "/ari/bridges/br")))
	evs = h.events()
	require.Equal(t, []string{"ChannelVarset", "ChannelLeftBridge"}, summary(evs, "b2")[:2])
	require.Equal(t, []string{"ChannelVarset", "ChannelLeftBridge", "BridgeDestroyed"}, summary(evs, "b1"))
	require.Equal(t, 404, first(h.call("GET", "/ari/bridges/br")))
}

func TestARIInboundAndAuth(t *testing.T) {
	h := newARIHarness(t, Config{ARIUser: "u", ARIPassword: "p", ARIApp: "inbound"})
	code, _, _ := rawHandshake(t, h.s.ARIAddr(), "/ari/events?app=inbound&api_key=callgate:callgate")
	require.Equal(t, 401, code)
	cfg, err := websocket.NewConfig("ws://"+h.s.ARIAddr()+"/ari/events?app=inbound", "http://localhost")
	require.NoError(t, err)
	cfg.Header = http.Header{"Authorization": {"Basic dTpw"}} // u:p
	ws, err := websocket.DialConfig(cfg)
	require.NoError(t, err)
	defer ws.Close()
	h.ws = ws
	h.in = make(chan string, 64)
	go func() {
		defer close(h.in)
		for {
			var m string
			if websocket.Message.Receive(ws, &m) != nil {
				return
			}
			h.in <- m
		}
	}()
	h.waitConns(1)
	id := h.s.StartARIInboundChannel("15550001111")
	evs := h.events()
	require.Equal(t, []string{"StasisStart"}, summary(evs, id))
	require.Equal(t, "Ring", evs[0].chanState())
	require.Equal(t, "inbound", evs[0]["application"])
	resp := h.do("DELETE", "/ari/channels/"+id+"?api_key=u:p", "", nil)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	require.Equal(t, []string{"ChannelHangupRequest:32", "StasisEnd"}, summary(h.events(), id))
}

func TestARICloseRemovesTempDir(t *testing.T) {
	s := New(Config{Clock: NewManualClock(time.Unix(0, 0))})
	require.NoError(t, s.ListenARI("127.0.0.1:0"))
	dir := s.ARIRecordingDir()
	_, err := os.Stat(dir)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err))
	require.ErrorIs(t, s.ListenARI("127.0.0.1:0"), ErrClosed)
}

func TestARIScaledClock(t *testing.T) {
	s := New(Config{TimeScale: 0.01})
	require.NoError(t, s.ListenARI("127.0.0.1:0"))
	defer s.Close()
	h := &ariHarness{t: t, s: s, base: "http://" + s.ARIAddr()}
	h.connect(ariEventsTarget)
	require.Equal(t, 200, first(h.call("POST", "/ari/channels?endpoint=Local/1006@cgtest&app=callgate&channelId=sc1")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitChannelGone(ctx, "sc1"))
	require.Equal(t, []string{"Dial:", "ChannelStateChange:Up", "Dial:ANSWER", "ChannelVarset", "StasisStart",
		"ChannelHangupRequest:16", "StasisEnd", "ChannelVarset", "ChannelDestroyed:16"}, summary(h.events(), "sc1"))
}

func TestARIJSONBodyAndLimits(t *testing.T) {
	h := newARIHarness(t, Config{MaxSessions: 3})
	h.connect(ariEventsTarget)
	body := `{"endpoint":"Local/1004@cgtest","app":"callgate","channelId":"j1","timeout":0,` +
		`"callerId":"\"X\" <123>","variables":{"CG_ID":"42"}}`
	resp := h.do("POST", "/ari/channels", "basic:callgate:callgate", []byte(body))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.Contains(t, string(b), `"caller":{"name":"X","number":"123"}`)
	st, v := h.call("GET", "/ari/channels/j1/variable?variable=CG_ID")
	require.Equal(t, 200, st)
	require.Equal(t, `{"value":"42"}`, v)
	st, v = h.call("POST", "/ari/channels?endpoint=Local/1005@cgtest&app=callgate")
	require.Equal(t, 500, st)
	require.Equal(t, `{"error":"Allocation failed"}`, v)
	require.Equal(t, 1, h.s.Refusals())
	// timeout 0 means Asterisk's default, 30 s.
	h.advance(29 * time.Second)
	_, ok := h.s.Channel("j1")
	require.True(t, ok)
	h.advance(time.Second)
	_, ok = h.s.Channel("j1")
	require.False(t, ok)
	require.Equal(t, []string{"Dial:", "ChannelStateChange:Ringing", "Dial:RINGING", "ChannelDestroyed:19"}, summary(h.events(), "j1"))
}
