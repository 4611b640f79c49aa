package switchsim

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Event wire formats a connection can ask for.
const (
	formatPlain = iota
	formatJSON
	formatXML
)

// maxQueuedEvents is FreeSWITCH's MAX_QUEUE_LEN: a listener that falls this
// far behind is disconnected.
const maxQueuedEvents = 100000

const disconnectNotice = "Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" +
	"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

// conn is one ESL client. A reader goroutine parses and runs its commands
// one at a time; a writer goroutine owns the socket's write side and drains
// an output buffer that replies and events are appended to, so the switch
// never waits on a slow client beyond the write deadline.
type conn struct {
	s  *Sim
	nc net.Conn

	// Guarded by s.mu: what the client listens to.
	authed    bool
	listening bool
	all       bool
	events    map[string]bool
	format    int
	filters   []filter

	mu         sync.Mutex
	out        []byte   // bytes waiting for the writer
	queued     int      // events in out
	holding    int      // >0 while a command runs: its events wait for its reply
	held       [][]byte // events produced while holding
	sent       int      // events handed to the writer since connect
	cut        int      // abort the connection after writing out[:cut]; -1 means no cut
	closeAfter bool     // close gracefully once out is written
	dead       bool
	wake       chan struct{}
	quit       chan struct{}
}

func newConn(s *Sim, nc net.Conn) *conn {
	return &conn{s: s, nc: nc, events: map[string]bool{}, cut: -1,
		wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

// wants reports whether the event goes to this client. Caller holds s.mu.
func (c *conn) wants(e *event) bool {
	if !c.listening || !(c.all || c.events[e.name]) {
		return false
	}
	return passes(c.filters, e)
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pushEvent queues a serialised event (shared, never modified).
func (c *conn) pushEvent(b []byte, dropAfter int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	if c.holding > 0 {
		if len(c.held) >= maxQueuedEvents && c.cut < 0 {
			c.cut = len(c.out) // fallen too far behind: cut, like FreeSWITCH
			c.signal()
			return
		}
		c.held = append(c.held, b)
		return
	}
	c.appendEvent(b, dropAfter)
	c.signal()
}

// appendEvent adds an event to out, applying the drop-after-N fault and the
// queue limit. Caller holds c.mu.
func (c *conn) appendEvent(b []byte, dropAfter int) {
	if c.cut >= 0 {
		return
	}
	c.out = append(c.out, b...)
	c.sent++
	c.queued++
	if (dropAfter > 0 && c.sent >= dropAfter) || c.queued > maxQueuedEvents {
		c.cut = len(c.out)
	}
}

// pushReply queues bytes that are not an event (replies, notices).
func (c *conn) pushReply(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.cut >= 0 {
		return
	}
	c.out = append(c.out, b...)
	c.signal()
}

// hold makes events wait until release, so a command's reply is written
// before the events it caused, as mod_event_socket's single listener thread
// does.
func (c *conn) hold() {
	c.mu.Lock()
	c.holding++
	c.mu.Unlock()
}

// release queues reply, then the events held since hold.
func (c *conn) release(reply []byte, dropAfter int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding--
	if c.dead {
		return
	}
	if c.cut < 0 {
		c.out = append(c.out, reply...)
	}
	if c.holding == 0 {
		for _, b := range c.held {
			c.appendEvent(b, dropAfter)
		}
		c.held = nil
	}
	c.signal()
}

// closeGracefully writes what is queued, then closes the socket.
func (c *conn) closeGracefully() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
	c.signal()
}

// abort cuts the connection at once, without a disconnect notice and with
// a TCP reset, like a network failure.
func (c *conn) abort() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.out = nil
	c.held = nil
	close(c.quit)
	c.mu.Unlock()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.nc.Close()
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	var spare []byte
	for {
		select {
		case <-c.wake:
		case <-c.quit:
			return
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return
		}
		buf, cut, closeAfter := c.out, c.cut, c.closeAfter
		c.out, c.queued = spare[:0], 0
		if cut >= 0 {
			c.out = nil
		}
		c.mu.Unlock()
		if cut >= 0 {
			_ = c.write(buf[:cut])
			c.abort()
			return
		}
		if err := c.write(buf); err != nil {
			c.s.log.Debug("switchsim: client write failed", "conn", c.nc.RemoteAddr().String(), "err", err)
			c.abort()
			return
		}
		spare = nil
		if cap(buf) <= 1<<20 {
			spare = buf[:0] // c.out now uses the other buffer: the two never alias
		}
		if closeAfter {
			c.mu.Lock()
			empty := len(c.out) == 0
			c.mu.Unlock()
			if empty {
				c.mu.Lock()
				if !c.dead {
					c.dead = true
					close(c.quit)
				}
				c.mu.Unlock()
				_ = c.nc.Close()
				return
			}
			c.signal()
		}
	}
}

func (c *conn) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

// errStop ends a connection's read loop.
var errStop = errors.New("switchsim: connection finished")

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.s.removeConn(c)
	c.pushReply([]byte("Content-Type: auth/request\n\n"))
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 32<<10)
	for {
		off := 0
		for {
			cmd, n, err := ParseCommand(buf[off:])
			if err != nil {
				c.s.log.Debug("switchsim: bad command frame", "err", err)
				c.abort()
				return
			}
			if n == 0 {
				break
			}
			off += n
			if cmd.Line == "" {
				continue
			}
			if err := c.handle(cmd); err != nil {
				return
			}
		}
		buf = buf[:copy(buf, buf[off:])]
		n, err := c.nc.Read(tmp)
		if err != nil {
			c.abort()
			return
		}
		buf = append(buf, tmp[:n]...)
	}
}
