package freeswitch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

// fakeESL is a tiny inbound Event Socket server on 127.0.0.1:0 that speaks
// the wire format of the fixtures: it asks for auth, answers commands (a
// scenario handler first, then defaults) and writes recorded frames byte
// for byte. Like FreeSWITCH it takes any number of connections and writes
// events (emit) to every one subscribed with `event plain`.
type fakeESL struct {
	t        testing.TB
	ln       net.Listener
	password string
	handle   func(s *fakeSession, cmd string) bool
	sessions chan *fakeSession // every accepted connection
	cmds     chan *fakeSession // connections whose first command was not `event plain`
	evs      chan *fakeSession // connections whose first command was `event plain`
	status   string            // api status body, from fixture 01

	mu    sync.Mutex
	all   []*fakeSession
	subs  []*fakeSession // subscribed, in order
	nCmds int
	nSubs int
}

// fakeSession is one client connection. n counts from 1 among the
// connections of the same role (command or event), set at its first
// command.
type fakeSession struct {
	srv      *fakeESL
	n        int
	events   bool // an event connection
	c        net.Conn
	r        *bufio.Reader
	wmu      sync.Mutex
	commands chan string
	gone     chan struct{} // closed when the client hangs up
}

func newFakeESL(t testing.TB, handle func(s *fakeSession, cmd string) bool) *fakeESL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeESL{t: t, ln: ln, password: "ClueCon", handle: handle,
		sessions: make(chan *fakeSession, 64), cmds: make(chan *fakeSession, 64), evs: make(chan *fakeSession, 64),
		status: apiBody(t, "01-auth-ok-api", 0)}
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range f.all {
			s.c.Close()
		}
	})
	return f
}

func (f *fakeESL) addr() string { return f.ln.Addr().String() }

func (f *fakeESL) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s := &fakeSession{srv: f, c: c, r: bufio.NewReader(c), commands: make(chan string, 1024), gone: make(chan struct{})}
		f.mu.Lock()
		f.all = append(f.all, s)
		f.mu.Unlock()
		f.sessions <- s
		go f.serve(s)
	}
}

// classify numbers s by the role its first command shows.
func (f *fakeESL) classify(s *fakeSession, cmd string) {
	f.mu.Lock()
	s.events = strings.HasPrefix(cmd, "event plain ")
	ch := f.cmds
	if s.events {
		f.nSubs++
		s.n, ch = f.nSubs, f.evs
	} else {
		f.nCmds++
		s.n = f.nCmds
	}
	f.mu.Unlock()
	ch <- s
}

// subscribe answers `event plain` and adds s to the connections emit
// writes to. Both happen under s's write lock, so no event can be written
// before the reply, and none emitted after the client saw it is missed.
func (f *fakeESL) subscribe(s *fakeSession) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, _ = s.c.Write([]byte("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"))
	f.mu.Lock()
	f.subs = append(f.subs, s)
	f.mu.Unlock()
}

// emit writes frames to every subscribed connection still open, as
// FreeSWITCH broadcasts an event to every listener.
func (f *fakeESL) emit(frames []byte) {
	f.mu.Lock()
	subs := f.subs[:0:0]
	for _, s := range f.subs {
		select {
		case <-s.gone:
		default:
			subs = append(subs, s)
		}
	}
	f.subs = subs
	f.mu.Unlock()
	for _, s := range subs {
		s.write(frames)
	}
}

func (f *fakeESL) serve(s *fakeSession) {
	defer close(s.gone)
	s.write([]byte("Content-Type: auth/request\n\n"))
	classified := false
	for {
		cmd, err := readESLCommand(s.r)
		if err != nil {
			return
		}
		if pw, ok := strings.CutPrefix(cmd, "auth "); ok {
			if pw != f.password {
				s.reply("-ERR invalid")
				s.write([]byte("Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n"))
				s.c.Close()
				return
			}
			s.reply("+OK accepted")
			continue
		}
		if !classified {
			classified = true
			f.classify(s, cmd)
		}
		s.commands <- cmd
		if f.handle != nil && f.handle(s, cmd) {
			continue
		}
		switch {
		case strings.HasPrefix(cmd, "event plain "):
			f.subscribe(s)
		case cmd == "api status":
			s.api(f.status)
		case cmd == "api show channels as json":
			s.api("{\"row_count\": 0}\n")
		default:
			s.reply("-ERR command not found")
		}
	}
}

// readESLCommand reads one command: lines up to a blank line; eslgo ends
// them with CRLF CRLF, FreeSWITCH accepts LF too.
func readESLCommand(r *bufio.Reader) (string, error) {
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(lines) == 0 {
				continue
			}
			return lines[0], nil
		}
		lines = append(lines, line)
	}
}

func (s *fakeSession) write(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, _ = s.c.Write(b)
}

func (s *fakeSession) reply(text string) {
	s.write([]byte("Content-Type: command/reply\nReply-Text: " + text + "\n\n"))
}

func (s *fakeSession) api(body string) {
	s.write([]byte(fmt.Sprintf("Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body)))
}

// replay returns a handler for transcript name: each `bgapi originate` gets
// the transcript's next bgapi reply on its (command) connection, then every
// event frame up to the reply after it is emitted on the event connections
// (replies to commands callgate does not send are skipped). With rng the
// events of each batch are written in random pieces, one write each, so
// frames reach the reader split anywhere.
func replay(tb testing.TB, name string, rng *rand.Rand) func(*fakeSession, string) bool {
	frames := loadFrames(tb, name)
	type batch struct {
		reply  []byte
		events [][]byte
	}
	var batches []batch
	for _, f := range frames {
		switch {
		case f.isJobReply():
			batches = append(batches, batch{reply: f.raw})
		case f.isEvent() && len(batches) > 0:
			b := &batches[len(batches)-1]
			b.events = append(b.events, f.raw)
		}
	}
	var mu sync.Mutex
	next := 0
	return func(s *fakeSession, cmd string) bool {
		if !strings.HasPrefix(cmd, "bgapi originate ") {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if next >= len(batches) {
			s.reply("-ERR no more originates in " + name)
			return true
		}
		b := batches[next]
		next++
		s.write(b.reply)
		events := bytes.Join(b.events, nil)
		if rng == nil {
			s.srv.emit(events)
			return true
		}
		for len(events) > 0 {
			n := min(len(events), 1+rng.IntN(700))
			s.srv.emit(events[:n])
			events = events[n:]
		}
		return true
	}
}

// sentOriginates returns the bgapi originate lines the transcript sent to
// the real FreeSWITCH.
func sentOriginates(tb testing.TB, name string) []string {
	data, err := os.ReadFile(filepath.Join(fixtureDir(tb), name+".jsonl"))
	require.NoError(tb, err)
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec struct{ Dir, Data string }
		require.NoError(tb, json.Unmarshal(line, &rec))
		if rec.Dir == "send" && strings.HasPrefix(rec.Data, "bgapi originate ") {
			out = append(out, strings.TrimRight(rec.Data, "\n"))
		}
	}
	return out
}

// recSink records what a Switch delivers.
type recSink struct {
	events    chan controller.ChannelEvent
	connected chan string
}

func newRecSink() *recSink {
	return &recSink{events: make(chan controller.ChannelEvent, 1<<16), connected: make(chan string, 64)}
}

func (r *recSink) HandleChannelEvent(ev controller.ChannelEvent) { r.events <- ev }
func (r *recSink) SwitchConnected(name string)                   { r.connected <- name }

// until returns the events received up to and including the first for
// which stop is true.
func (r *recSink) until(t *testing.T, stop func(controller.ChannelEvent) bool) []controller.ChannelEvent {
	t.Helper()
	var got []controller.ChannelEvent
	for {
		ev := waitFor(t, r.events)
		got = append(got, ev)
		if stop(ev) {
			return got
		}
	}
}

// rest drains what is left; call it after Stop, when nothing more can come.
func (r *recSink) rest() []controller.ChannelEvent {
	var got []controller.ChannelEvent
	for {
		select {
		case ev := <-r.events:
			got = append(got, ev)
		default:
			return got
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a started Switch against a fake server.
type harness struct {
	srv    *fakeESL
	sw     *Switch
	sink   *recSink
	logs   *syncBuffer
	queued chan struct{} // one per event the listener queued
}

// waitQueued waits until n more events are in the dispatcher.
func (h *harness) waitQueued(t *testing.T, n int) {
	t.Helper()
	for range n {
		waitFor(t, h.queued)
	}
}

// setup starts a Switch against srv and waits for its first connection
// unless the config edit sets a wrong password.
func setup(t *testing.T, srv *fakeESL, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{srv: srv, sink: newRecSink(), logs: &syncBuffer{}, queued: make(chan struct{}, 1<<16)}
	cfg := Config{
		Name: "fs1", Address: srv.addr(), Password: "ClueCon", DialTemplate: "loopback/{number}/cgcap",
		HeartbeatInterval: time.Hour, CommandTimeout: 5 * time.Second,
		ReconnectMin: time.Millisecond, ReconnectMax: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	sw, err := New(cfg, h.sink)
	require.NoError(t, err)
	h.sw = sw
	sw.disp.afterPush = func() { h.queued <- struct{}{} }
	require.NoError(t, sw.Start(context.Background()))
	t.Cleanup(func() {
		sw.Stop()
		require.NotContains(t, h.logs.String(), "ClueCon", "the ESL password was logged")
	})
	if cfg.Password == srv.password {
		require.Equal(t, "fs1", waitFor(t, h.sink.connected))
	}
	return h
}
