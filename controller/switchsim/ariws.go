package switchsim

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// ariWS is one events WebSocket: the frames queued for it and the writer
// that sends them.
type ariWS struct {
	apps    map[string]bool
	nc      net.Conn
	ws      *websocket.Conn
	timeout time.Duration

	mu     sync.Mutex
	q      [][]byte
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

const ariBadRequestApp = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n<p>HTTP request is missing param: [app]</p>\r\n<hr />\r\n<address>Asterisk</address>\r\n</body></html>\r\n"

// serveARIEvents upgrades /ari/events (auth already checked) and registers
// the connection for its applications.
func (s *Sim) serveARIEvents(w http.ResponseWriter, r *http.Request) {
	appParam := ariQuery(r.URL.RawQuery).Get("app")
	if appParam == "" {
		h := w.Header()
		h["Server"] = []string{"Asterisk"}
		h["Cache-Control"] = []string{"no-cache, no-store"}
		h["Content-Type"] = nil
		h["Content-type"] = []string{"text/html"}
		h["Content-Length"] = []string{strconv.Itoa(len(ariBadRequestApp))}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(ariBadRequestApp))
		return
	}
	s.mu.Lock()
	refuse := s.refuseConns || s.closed
	s.mu.Unlock()
	if refuse {
		ariMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	nc, _ := r.Context().Value(ariConnKey{}).(net.Conn)
	apps := map[string]bool{}
	for _, a := range strings.Split(appParam, ",") {
		if a = strings.TrimSpace(a); a != "" {
			apps[a] = true
		}
	}
	srv := websocket.Server{
		Handshake: func(cfg *websocket.Config, req *http.Request) error {
			for _, p := range cfg.Protocol {
				if p == "ari" {
					cfg.Protocol = []string{"ari"}
					return nil
				}
			}
			cfg.Protocol = nil
			return nil
		},
		Handler: func(ws *websocket.Conn) {
			c := &ariWS{apps: apps, nc: nc, ws: ws, timeout: s.cfg.WriteTimeout,
				wake: make(chan struct{}, 1), done: make(chan struct{})}
			s.mu.Lock()
			if s.closed || s.ari == nil {
				s.mu.Unlock()
				return
			}
			s.ari.conns = append(s.ari.conns, c)
			for a := range apps {
				s.ari.apps[a] = true
			}
			s.wake()
			s.ari.wsDone.Add(1)
			s.mu.Unlock()
			defer s.ari.wsDone.Done()
			go c.writeLoop()
			// Read until the client closes; pings are answered by the library.
			var msg string
			for {
				if err := websocket.Message.Receive(ws, &msg); err != nil {
					break
				}
			}
			s.removeARIConn(c)
			c.close()
			<-c.done
		},
	}
	srv.ServeHTTP(w, r)
}

func (s *Sim) removeARIConn(c *ariWS) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ari == nil {
		return
	}
	for i, x := range s.ari.conns {
		if x == c {
			s.ari.conns = append(s.ari.conns[:i:i], s.ari.conns[i+1:]...)
			s.wake()
			return
		}
	}
}

// WaitARIConnections blocks until exactly n events WebSockets are
// connected (a driver has subscribed, or its connection is gone). Returns
// ctx's error or ErrClosed if that comes first.
func (s *Sim) WaitARIConnections(ctx context.Context, n int) error {
	return s.waitUntil(ctx, func() bool {
		if s.ari == nil {
			return n == 0
		}
		return len(s.ari.conns) == n
	})
}

// push queues a text frame.
func (c *ariWS) push(b []byte) {
	c.mu.Lock()
	if !c.closed {
		c.q = append(c.q, b)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *ariWS) writeLoop() {
	defer close(c.done)
	for {
		c.mu.Lock()
		q := c.q
		c.q = nil
		closed := c.closed
		c.mu.Unlock()
		for _, b := range q {
			if c.nc != nil {
				_ = c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
			}
			if err := websocket.Message.Send(c.ws, string(b)); err != nil {
				c.abort()
				return
			}
		}
		if closed {
			return
		}
		if len(q) == 0 {
			<-c.wake
		}
	}
}

// close sends what is queued, then a close frame.
func (c *ariWS) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	go func() {
		<-c.done
		_ = c.ws.Close()
	}()
}

// abort cuts the TCP connection without a close frame (TCP reset).
func (c *ariWS) abort() {
	c.mu.Lock()
	c.closed = true
	c.q = nil
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

// ariAppActive reports whether a WebSocket is connected for app. Caller
// holds s.mu.
func (s *Sim) ariAppActive(app string) bool {
	for _, c := range s.ari.conns {
		if c.apps[app] {
			return true
		}
	}
	return false
}

// ariSend delivers an event to the application's WebSockets. Caller holds
// s.mu.
func (s *Sim) ariSend(app string, ev jobj) {
	if app == "" {
		return
	}
	ev = append(ev, jkv{"asterisk_id", s.ari.id}, jkv{"application", app})
	b := appendJSON(nil, ev)
	for _, c := range s.ari.conns {
		if c.apps[app] {
			c.push(b)
		}
	}
}

// ariMark queues a raw frame on every events WebSocket (tests use it as a
// barrier: everything emitted before it arrives before it).
func (s *Sim) ariMark(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ari == nil {
		return
	}
	for _, c := range s.ari.conns {
		c.push([]byte(text))
	}
}

// dropARIConns cuts every events WebSocket (DropConnections).
func (s *Sim) dropARIConns() {
	s.mu.Lock()
	var conns []*ariWS
	if s.ari != nil {
		conns = s.ari.conns
		s.ari.conns = nil
		s.wake()
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
}

// ARIConnectionCount returns the number of connected events WebSockets.
func (s *Sim) ARIConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ari == nil {
		return 0
	}
	return len(s.ari.conns)
}
