package switchsim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The ARI side: Asterisk 22's REST Interface (HTTP) and its events
// WebSocket, on the same simulated calls, clock and faults as the ESL
// side. ari*.go hold it; doc.go says what it speaks and where it differs.

// ariTimeLayout is how Asterisk writes timestamps and creationtime.
const ariTimeLayout = "2006-01-02T15:04:05.000-0700"

// ariDefaultAsteriskID is the entity id (asterisk_id) of the captured box.
const ariDefaultAsteriskID = "02:fc:00:00:00:01"

// ariState is everything the ARI side keeps. It lives behind Sim.mu.
type ariState struct {
	srv      *http.Server
	ln       net.Listener
	recDir   string
	ownDir   bool // recDir is a temp dir removed on Close
	id       string
	channels map[string]*ariChan
	order    uint64
	localSeq int // Local/…-%08x and Recorder/ARI-%08x numbers
	uniqSeq  int // generated unique ids
	snoopSeq map[string]int
	bridges  map[string]*ariBridge
	playback map[string]*ariPlayback
	live     map[string]*ariRecording
	apps     map[string]bool // registered at least once
	conns    []*ariWS
	wsDone   sync.WaitGroup
}

func (s *Sim) ariInit() {
	if s.ari != nil {
		return
	}
	s.ari = &ariState{
		id:       ariDefaultAsteriskID,
		channels: map[string]*ariChan{},
		snoopSeq: map[string]int{},
		bridges:  map[string]*ariBridge{},
		playback: map[string]*ariPlayback{},
		live:     map[string]*ariRecording{},
		apps:     map[string]bool{},
	}
}

// ListenARI binds addr (e.g. "127.0.0.1:0") and serves Asterisk's REST
// Interface under /ari/ (HTTP, basic auth or api_key=user:pass) and its
// events WebSocket at /ari/events?app=<app>. Returns the configuration
// error, the bind error, ErrClosed after Close, or an error if already
// listening.
func (s *Sim) ListenARI(addr string) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("switchsim: listening for ARI on %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.closed || (s.ari != nil && s.ari.ln != nil) {
		closed := s.closed
		s.mu.Unlock()
		_ = ln.Close()
		if closed {
			return ErrClosed
		}
		return errors.New("switchsim: ARI already listening")
	}
	s.ariInit()
	a := s.ari
	if a.recDir == "" {
		if s.cfg.ARIRecordingDir != "" {
			a.recDir = s.cfg.ARIRecordingDir
		} else {
			dir, err := os.MkdirTemp("", "switchsim-ari-rec-")
			if err != nil {
				s.mu.Unlock()
				_ = ln.Close()
				return fmt.Errorf("switchsim: ARI recording dir: %w", err)
			}
			a.recDir, a.ownDir = dir, true
		}
	}
	a.ln = ln
	a.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveARI),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ariConnKey{}, c)
		},
		ErrorLog: nil,
	}
	srv := a.srv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln)
	}()
	s.log.Info("switchsim: ARI listening", "addr", ln.Addr().String())
	return nil
}

// ARIAddr is the address ListenARI bound, or "" before ListenARI.
func (s *Sim) ARIAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ari == nil || s.ari.ln == nil {
		return ""
	}
	return s.ari.ln.Addr().String()
}

// closeARI stops the ARI server: WebSockets get a close frame, timers
// stop, the temp recording dir goes. Called by Close without s.mu.
func (s *Sim) closeARI() {
	s.mu.Lock()
	a := s.ari
	if a == nil {
		s.mu.Unlock()
		return
	}
	for _, ch := range a.channels {
		ch.stopTimers()
	}
	for _, r := range a.live {
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	conns := a.conns
	a.conns = nil
	srv := a.srv
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		_ = srv.Close()
	}
	a.wsDone.Wait()
	if a.ownDir {
		_ = os.RemoveAll(a.recDir)
	}
}

// ARIRecordingDir is where stored recordings are kept ("" before
// ListenARI).
func (s *Sim) ARIRecordingDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ari == nil {
		return ""
	}
	return s.ari.recDir
}

type ariConnKey struct{}

// ---------------------------------------------------------------- JSON

// jkv is one member of an ordered JSON object.
type jkv struct {
	k string
	v any
}

// jobj is a JSON object that keeps its member order (Asterisk's order).
type jobj []jkv

// appendJSON writes v (string, int, int64, bool, nil, []string, jobj,
// []jobj, []any, map[string]string) without HTML escaping, as Asterisk does.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return ariAppendString(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case bool:
		return strconv.AppendBool(b, x)
	case jobj:
		b = append(b, '{')
		for i, m := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = ariAppendString(b, m.k)
			b = append(b, ':')
			b = appendJSON(b, m.v)
		}
		return append(b, '}')
	case []jobj:
		b = append(b, '[')
		for i, o := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, o)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = ariAppendString(b, s)
		}
		return append(b, ']')
	case []any:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, s)
		}
		return append(b, ']')
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := make(jobj, 0, len(keys))
		for _, k := range keys {
			o = append(o, jkv{k, x[k]})
		}
		return appendJSON(b, o)
	default:
		j, _ := json.Marshal(x)
		return append(b, j...)
	}
}

func ariAppendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func (s *Sim) ariTime(t time.Time) string { return t.UTC().Format(ariTimeLayout) }

// ---------------------------------------------------------------- HTTP

// ariReq is one REST request: its parameters merged from the query string
// and a JSON body (Asterisk accepts both), plus "variables".
type ariReq struct {
	w      http.ResponseWriter
	r      *http.Request
	params map[string]string
	multi  url.Values
	vars   map[string]string
	parts  []string // path after /ari/, split on "/"
}

func (q *ariReq) get(k string) string { return q.params[k] }

func (q *ariReq) has(k string) bool { _, ok := q.params[k]; return ok }

func (q *ariReq) intParam(k string, def int) int {
	v, ok := q.params[k]
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def
	}
	return n
}

func (q *ariReq) boolParam(k string) bool {
	v := strings.ToLower(q.params[k])
	return v == "true" || v == "yes" || v == "1"
}

// reply writes a JSON response the way Asterisk does (Server, Date,
// Cache-Control, Content-type, Content-Length).
func ariReply(w http.ResponseWriter, status int, body any, extra ...string) {
	h := w.Header()
	h["Server"] = []string{"Asterisk"}
	h["Cache-Control"] = []string{"no-cache, no-store"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = []string{extra[i+1]}
	}
	if status == http.StatusNoContent || body == nil {
		h["Content-Type"] = nil
		h["Content-Length"] = []string{"0"}
		w.WriteHeader(status)
		return
	}
	b := appendJSON(nil, body)
	h["Content-Type"] = nil
	h["Content-type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func ariMessage(w http.ResponseWriter, status int, msg string, extra ...string) {
	ariReply(w, status, jobj{{"message", msg}}, extra...)
}

const ariRealm = `Basic realm="Asterisk REST Interface"`

// ariAuthOK checks HTTP basic auth or the api_key query parameter.
func (s *Sim) ariAuthOK(r *http.Request) bool {
	user, pass := s.cfg.ARIUser, s.cfg.ARIPassword
	if key := ariQuery(r.URL.RawQuery).Get("api_key"); key != "" {
		u, p, ok := strings.Cut(key, ":")
		return ok && u == user && p == pass
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Basic ") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
	if err != nil {
		return false
	}
	u, p, ok := strings.Cut(string(raw), ":")
	return ok && u == user && p == pass
}

func (s *Sim) serveARI(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath() // split before unescaping: names may hold %2F
	if !strings.HasPrefix(path, "/ari/") {
		// Asterisk's HTTP server: not an ARI path.
		ariMessage(w, http.StatusNotFound, "Resource not found")
		return
	}
	s.mu.Lock()
	delay := s.faults.ReplyDelay
	s.mu.Unlock()
	if delay > 0 {
		// Faults.ReplyDelay: a switch under load answers late.
		select {
		case <-time.After(delay):
		case <-s.done:
		}
	}
	if !s.ariAuthOK(r) {
		ariMessage(w, http.StatusUnauthorized, "Authentication required", "WWW-Authenticate", ariRealm)
		return
	}
	rest := strings.TrimSuffix(strings.TrimPrefix(path, "/ari/"), "/")
	if rest == "events" {
		s.serveARIEvents(w, r)
		return
	}
	q := &ariReq{w: w, r: r, params: map[string]string{}, multi: ariQuery(r.URL.RawQuery)}
	for k, v := range q.multi {
		if len(v) > 0 {
			q.params[k] = strings.Join(v, ",")
		}
	}
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(strings.TrimSpace(string(body))) > 0 {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				ariMessage(w, http.StatusBadRequest, "Error parsing request body")
				return
			}
			for k, v := range m {
				switch x := v.(type) {
				case string:
					q.params[k] = x
				case float64:
					q.params[k] = strconv.FormatFloat(x, 'f', -1, 64)
				case bool:
					q.params[k] = strconv.FormatBool(x)
				case map[string]any:
					if k == "variables" {
						q.vars = map[string]string{}
						for vk, vv := range x {
							q.vars[vk] = fmt.Sprint(vv)
						}
					}
				}
			}
		}
	}
	q.parts = strings.Split(rest, "/")
	for i, p := range q.parts {
		if u, err := url.PathUnescape(p); err == nil {
			q.parts[i] = u
		}
	}
	rt, vars := ariMatch(q.parts)
	if rt == nil {
		ariMessage(w, http.StatusNotFound, "Resource not found")
		return
	}
	h := rt.methods[r.Method]
	if h == nil {
		allow := []string{"OPTIONS"}
		for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
			if rt.methods[m] != nil {
				allow = append(allow, m)
			}
		}
		if r.Method == http.MethodOptions {
			ariReply(w, http.StatusNoContent, nil, "Allow", strings.Join(allow, ","))
			return
		}
		ariMessage(w, http.StatusMethodNotAllowed, "Invalid method", "Allow", strings.Join(allow, ","))
		return
	}
	h(s, q, vars)
}

// ariQuery parses a query string on "&" only: Asterisk keeps ";" inside
// values (media=tone:440;tonezone=us), which net/url refuses.
func ariQuery(raw string) url.Values {
	out := url.Values{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		out[k] = append(out[k], v)
	}
	return out
}

type ariHandler func(s *Sim, q *ariReq, v []string)

type ariRoute struct {
	pattern []string // "*" matches one segment
	methods map[string]ariHandler
}

func ariMatch(parts []string) (*ariRoute, []string) {
	for i := range ariRoutes {
		rt := &ariRoutes[i]
		if len(rt.pattern) != len(parts) {
			continue
		}
		var vars []string
		ok := true
		for j, p := range rt.pattern {
			if p == "*" {
				if parts[j] == "" {
					ok = false
					break
				}
				vars = append(vars, parts[j])
			} else if p != parts[j] {
				ok = false
				break
			}
		}
		if ok {
			return rt, vars
		}
	}
	return nil, nil
}

func route(pattern string, m map[string]ariHandler) ariRoute {
	return ariRoute{pattern: strings.Split(pattern, "/"), methods: m}
}

var ariRoutes []ariRoute

func init() {
	ariRoutes = []ariRoute{
		route("asterisk/info", map[string]ariHandler{"GET": (*Sim).ariInfo}),
		route("asterisk/ping", map[string]ariHandler{"GET": (*Sim).ariPing}),
		route("channels", map[string]ariHandler{"GET": (*Sim).ariListChannels, "POST": (*Sim).ariOriginate}),
		route("channels/create", map[string]ariHandler{"POST": (*Sim).ariCreate}),
		route("channels/*", map[string]ariHandler{"GET": (*Sim).ariGetChannel, "POST": (*Sim).ariOriginate, "DELETE": (*Sim).ariHangup}),
		route("channels/*/answer", map[string]ariHandler{"POST": (*Sim).ariAnswer}),
		route("channels/*/dial", map[string]ariHandler{"POST": (*Sim).ariDial}),
		route("channels/*/ring", map[string]ariHandler{"POST": (*Sim).ariNoop, "DELETE": (*Sim).ariNoop}),
		route("channels/*/hold", map[string]ariHandler{"POST": (*Sim).ariNoop, "DELETE": (*Sim).ariNoop}),
		route("channels/*/mute", map[string]ariHandler{"POST": (*Sim).ariNoop, "DELETE": (*Sim).ariNoop}),
		route("channels/*/play", map[string]ariHandler{"POST": (*Sim).ariPlayChannel}),
		route("channels/*/play/*", map[string]ariHandler{"POST": (*Sim).ariPlayChannel}),
		route("channels/*/record", map[string]ariHandler{"POST": (*Sim).ariRecordChannel}),
		route("channels/*/dtmf", map[string]ariHandler{"POST": (*Sim).ariSendDTMF}),
		route("channels/*/variable", map[string]ariHandler{"GET": (*Sim).ariGetVar, "POST": (*Sim).ariSetVar}),
		route("channels/*/snoop", map[string]ariHandler{"POST": (*Sim).ariSnoop}),
		route("channels/*/snoop/*", map[string]ariHandler{"POST": (*Sim).ariSnoop}),
		route("playbacks/*", map[string]ariHandler{"GET": (*Sim).ariGetPlayback, "DELETE": (*Sim).ariStopPlayback}),
		route("playbacks/*/control", map[string]ariHandler{"POST": (*Sim).ariControlPlayback}),
		route("recordings/live/*", map[string]ariHandler{"GET": (*Sim).ariGetLive, "DELETE": (*Sim).ariCancelLive}),
		route("recordings/live/*/stop", map[string]ariHandler{"POST": (*Sim).ariStopLive}),
		route("recordings/live/*/mute", map[string]ariHandler{"POST": (*Sim).ariMuteLive, "DELETE": (*Sim).ariMuteLive}),
		route("recordings/live/*/pause", map[string]ariHandler{"POST": (*Sim).ariPauseLive, "DELETE": (*Sim).ariPauseLive}),
		route("recordings/stored", map[string]ariHandler{"GET": (*Sim).ariListStored}),
		route("recordings/stored/*", map[string]ariHandler{"GET": (*Sim).ariGetStored, "DELETE": (*Sim).ariDeleteStored}),
		route("recordings/stored/*/file", map[string]ariHandler{"GET": (*Sim).ariStoredFile}),
		route("bridges", map[string]ariHandler{"GET": (*Sim).ariListBridges, "POST": (*Sim).ariCreateBridge}),
		route("bridges/*", map[string]ariHandler{"GET": (*Sim).ariGetBridge, "POST": (*Sim).ariCreateBridge, "DELETE": (*Sim).ariDestroyBridge}),
		route("bridges/*/addChannel", map[string]ariHandler{"POST": (*Sim).ariAddChannel}),
		route("bridges/*/removeChannel", map[string]ariHandler{"POST": (*Sim).ariRemoveChannel}),
		route("bridges/*/record", map[string]ariHandler{"POST": (*Sim).ariRecordBridge}),
		route("bridges/*/play", map[string]ariHandler{"POST": (*Sim).ariPlayBridge}),
		route("bridges/*/play/*", map[string]ariHandler{"POST": (*Sim).ariPlayBridge}),
		route("applications", map[string]ariHandler{"GET": (*Sim).ariListApps}),
		route("applications/*", map[string]ariHandler{"GET": (*Sim).ariGetApp}),
	}
}

// ---------------------------------------------------------------- asterisk, applications

func (s *Sim) ariInfo(q *ariReq, _ []string) {
	s.lock()
	started := s.ariTime(s.started)
	id := s.ari.id
	s.unlock()
	ariReply(q.w, http.StatusOK, jobj{
		{"build", jobj{{"os", "Linux"}, {"kernel", "6.18.44-fc-v669"}, {"machine", "x86_64"},
			{"options", "OPTIONAL_API"}, {"date", "2026-11-21 08:20:13 UTC"}, {"user", "root"}}},
		{"system", jobj{{"version", "22.10.1"}, {"entity_id", id}}},
		{"config", jobj{{"name", ""}, {"default_language", "en"}, {"setid", jobj{{"user", ""}, {"group", ""}}}}},
		{"status", jobj{{"startup_time", started}, {"last_reload_time", started}}},
	})
}

func (s *Sim) ariPing(q *ariReq, _ []string) {
	s.lock()
	body := jobj{{"ping", "pong"}, {"timestamp", s.ariTime(s.now)}, {"asterisk_id", s.ari.id}}
	s.unlock()
	ariReply(q.w, http.StatusOK, body)
}

func (s *Sim) ariNoop(q *ariReq, v []string) {
	s.lock()
	ch := s.ari.channels[v[0]]
	s.unlock()
	if ch == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	ariReply(q.w, http.StatusNoContent, nil)
}

// appJSON is an application's description. Caller holds s.mu.
func (s *Sim) appJSON(name string) jobj {
	chans := []string{}
	for _, ch := range s.ariChannelsSorted() {
		if ch.app == name && (ch.subscribed || ch.inStasis) {
			chans = append(chans, ch.id)
		}
	}
	bridges := []string{}
	for _, b := range s.ariBridgesSorted() {
		if b.apps[name] {
			bridges = append(bridges, b.id)
		}
	}
	return jobj{{"name", name}, {"channel_ids", chans}, {"bridge_ids", bridges}, {"endpoint_ids", []string{}},
		{"device_names", []string{}}, {"events_allowed", []jobj{}}, {"events_disallowed", []jobj{}}}
}

func (s *Sim) ariListApps(q *ariReq, _ []string) {
	s.lock()
	names := make([]string, 0, len(s.ari.apps))
	for n := range s.ari.apps {
		if s.ariAppActive(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]jobj, 0, len(names))
	for _, n := range names {
		out = append(out, s.appJSON(n))
	}
	s.unlock()
	ariReply(q.w, http.StatusOK, out)
}

func (s *Sim) ariGetApp(q *ariReq, v []string) {
	s.lock()
	if !s.ari.apps[v[0]] {
		s.unlock()
		ariMessage(q.w, http.StatusNotFound, "Application not found")
		return
	}
	body := s.appJSON(v[0])
	s.unlock()
	ariReply(q.w, http.StatusOK, body)
}
