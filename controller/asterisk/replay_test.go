package asterisk

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/callgate/callgate/controller"
)

// The replay harness: an httptest server that answers REST requests with
// the responses a fixture recorded and serves the fixture's WebSocket
// frames, in order. A frame recorded after a request listed in waitFor is
// held until the driver has made that request (so events never overtake the
// action that caused them); every other recorded request is a probe the
// driver does not make and is skipped. ids the driver chooses itself
// (playbackId, snoopId, recording name) are learned from its requests and
// substituted into later frames and paths.

type fixtureRecord struct {
	Kind   string            `json:"kind"`
	Seq    int               `json:"seq"`
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query"`
	Status int               `json:"status"`
	Body   *string           `json:"body"`
	Raw    string            `json:"raw"`
}

type fixtureReq struct {
	seq          int
	method, path string
	query        map[string]string
	status       int
	body         string
	consumed     bool
}

type replay struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []*fixtureReq
	frames  []scriptItem
	subst   map[string]string // fixture id → driver id
	waitFor map[int]bool
	changed chan struct{}
	done    chan struct{}
}

type scriptItem struct {
	raw string // a ws frame, or
	seq int    // a request (seq > 0)
}

func loadFixture(tb testing.TB, name string) []fixtureRecord {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".jsonl"))
	require.NoError(tb, err)
	defer f.Close()
	var out []fixtureRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r fixtureRecord
		require.NoError(tb, json.Unmarshal(sc.Bytes(), &r))
		out = append(out, r)
	}
	require.NoError(tb, sc.Err())
	return out
}

// wsFrames returns a fixture's WebSocket messages.
func wsFrames(tb testing.TB, name string) [][]byte {
	var out [][]byte
	for _, r := range loadFixture(tb, name) {
		if r.Kind == "ws" {
			out = append(out, []byte(r.Raw))
		}
	}
	return out
}

func newReplay(t testing.TB, name string, waitFor ...int) *replay {
	t.Helper()
	rp := &replay{t: t, subst: map[string]string{}, waitFor: map[int]bool{}, changed: make(chan struct{}, 1), done: make(chan struct{})}
	for _, s := range waitFor {
		rp.waitFor[s] = true
	}
	bySeq := map[int]*fixtureReq{}
	for _, r := range loadFixture(t, name) {
		switch r.Kind {
		case "rest_req":
			q := &fixtureReq{seq: r.Seq, method: r.Method, path: strings.TrimPrefix(r.Path, "/ari"), query: r.Query}
			if q.path == "/channels/create" {
				q.path = "/channels" // the driver originates; the create+dial fixtures answer it
			}
			bySeq[r.Seq] = q
			rp.reqs = append(rp.reqs, q)
			rp.frames = append(rp.frames, scriptItem{seq: r.Seq})
		case "rest_resp":
			if q := bySeq[r.Seq]; q != nil {
				q.status = r.Status
				if r.Body != nil {
					q.body = *r.Body
				}
			}
		case "ws":
			rp.frames = append(rp.frames, scriptItem{raw: r.Raw})
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ari/events", websocket.Handler(rp.serveWS))
	mux.HandleFunc("/ari/", rp.serveREST)
	rp.srv = httptest.NewServer(authOnly(mux))
	t.Cleanup(func() { close(rp.done); rp.srv.Close() })
	return rp
}

func authOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "callgate" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Authentication required"}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (rp *replay) replace(s string) string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for from, to := range rp.subst {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

func (rp *replay) serveREST(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/ari")
	if path == "/asterisk/ping" {
		_, _ = w.Write([]byte(`{"ping":"pong","timestamp":"2026-11-21T08:27:09.524+0000","asterisk_id":"02:fc:00:00:00:01"}`))
		return
	}
	rp.mu.Lock()
	var hit *fixtureReq
	for _, q := range rp.reqs {
		if q.consumed || q.method != r.Method {
			continue
		}
		p := q.path
		for from, to := range rp.subst {
			p = strings.ReplaceAll(p, from, to)
		}
		if p == path {
			hit = q
			break
		}
	}
	if hit != nil {
		hit.consumed = true
		for _, k := range []string{"playbackId", "snoopId", "name", "bridgeId"} {
			if v := r.URL.Query().Get(k); v != "" && hit.query[k] != "" {
				rp.subst[hit.query[k]] = v
			}
		}
	}
	rp.mu.Unlock()
	select {
	case rp.changed <- struct{}{}:
	default:
	}
	if hit == nil {
		switch r.Method {
		case http.MethodGet:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"Resource not found"}`))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
		return
	}
	if hit.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(hit.status)
	_, _ = w.Write([]byte(rp.replace(hit.body)))
}

func (rp *replay) consumed(seq int) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, q := range rp.reqs {
		if q.seq == seq {
			return q.consumed
		}
	}
	return true
}

func (rp *replay) serveWS(ws *websocket.Conn) {
	for _, it := range rp.frames {
		if it.seq > 0 {
			for rp.waitFor[it.seq] && !rp.consumed(it.seq) {
				select {
				case <-rp.changed:
				case <-rp.done:
					return
				}
			}
			continue
		}
		if err := websocket.Message.Send(ws, rp.replace(it.raw)); err != nil {
			return
		}
	}
	<-rp.done
}

// sink collects events per call.
type sink struct {
	mu        sync.Mutex
	calls     map[controller.CallID]chan controller.ChannelEvent
	connected chan string
}

func newSink() *sink {
	return &sink{calls: map[controller.CallID]chan controller.ChannelEvent{}, connected: make(chan string, 16)}
}

func (s *sink) ch(id controller.CallID) chan controller.ChannelEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok {
		c = make(chan controller.ChannelEvent, 256)
		s.calls[id] = c
	}
	return c
}

func (s *sink) HandleChannelEvent(ev controller.ChannelEvent) { s.ch(ev.CallID) <- ev }
func (s *sink) SwitchConnected(name string)                   { s.connected <- name }

// deadline bounds every wait: a deadline, not a measurement.
const deadline = 20 * time.Second

// next returns the call's next event.
func (s *sink) next(t testing.TB, id controller.CallID) controller.ChannelEvent {
	t.Helper()
	select {
	case ev := <-s.ch(id):
		return ev
	case <-time.After(deadline):
		t.Fatalf("call %s: no event", id)
		return controller.ChannelEvent{}
	}
}

// until folds the call's events into rec until one of kind arrives.
func (s *sink) until(t testing.TB, rec *controller.Call, kind controller.EventKind) (controller.ChannelEvent, []controller.EventKind) {
	t.Helper()
	var kinds []controller.EventKind
	for {
		ev := s.next(t, rec.ID)
		kinds = append(kinds, ev.Kind)
		_, err := controller.Apply(rec, ev)
		require.NoError(t, err, "event %s", ev.Kind)
		if ev.Kind == kind {
			return ev, kinds
		}
	}
}

// startReplay builds a driver on rp and waits until it is connected.
func startReplay(t testing.TB, rp *replay, mod func(*Config)) (*Switch, *sink) {
	t.Helper()
	cfg := Config{Name: "ast1", URL: rp.srv.URL + "/ari", User: "callgate", Password: "secret", App: "callgate",
		DialTemplate: "Local/{number}@cgtest", ReconnectMin: time.Millisecond, ReconnectMax: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	sk := newSink()
	s, err := New(cfg, sk)
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	select {
	case <-sk.connected:
	case <-time.After(deadline):
		t.Fatal("driver did not connect")
	}
	return s, sk
}
