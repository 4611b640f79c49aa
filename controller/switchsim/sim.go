package switchsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"
)

// Sim is a simulated FreeSWITCH reachable over the Event Socket. All call
// state lives behind one mutex; behaviour runs on Clock timers, never one
// goroutine per call. Its methods are safe for concurrent use.
type Sim struct {
	cfg      Config
	cfgErr   error // from Config.Validate, reported by Listen
	log      *slog.Logger
	clock    Clock
	coreUUID string
	started  time.Time
	done     chan struct{}

	mu            sync.Mutex
	now           time.Time // time of what is happening now, never decreasing
	seq           uint64    // Event-Sequence of the last event
	scratch       event
	dates         dateCache
	later         []func() // work queued by the running handler, run before mu is released
	channels      map[string]*channel
	order         uint64
	sessionsTotal int
	maxSessions   int
	sps           spsState
	peak          windowMax
	spsPeak       windowMax
	originated    int
	callees       *rand.Rand // draws of Config.Callees, under mu
	originates    []string   // the arguments of every ESL originate, in order
	sofia         map[string]SofiaProfile
	conns         []*conn
	faults        Faults
	closed        bool
	heartbeat     Timer
	changed       chan struct{} // closed when channels go away or originates are refused
	refusals      int
	hupalls       int
	refuseConns   bool
	ari           *ariState // the ARI side (ari*.go); nil until used

	ln net.Listener
	wg sync.WaitGroup
}

// New returns a simulator with the given configuration; it serves clients
// once Listen is called. Call Close to stop it.
func New(cfg Config) *Sim {
	cfgErr := cfg.Validate()
	cfg = cfg.withDefaults()
	s := &Sim{
		cfg:         cfg,
		cfgErr:      cfgErr,
		log:         cfg.Logger,
		clock:       cfg.Clock,
		coreUUID:    newUUID(),
		done:        make(chan struct{}),
		changed:     make(chan struct{}),
		channels:    map[string]*channel{},
		maxSessions: cfg.MaxSessions,
		sofia:       sofiaProfiles(cfg.SofiaProfiles),
	}
	s.started = s.clock.Now()
	s.now = s.started
	s.sps.total, s.sps.budget = cfg.MaxSPS, cfg.MaxSPS
	s.mu.Lock()
	s.scheduleHeartbeat()
	s.mu.Unlock()
	return s
}

// Listen binds addr (e.g. "127.0.0.1:0") and serves ESL clients in the
// background. Returns the configuration error, the bind error, ErrClosed
// after Close, or an error if already listening.
func (s *Sim) Listen(addr string) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("switchsim: listening on %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.closed || s.ln != nil {
		s.mu.Unlock()
		_ = ln.Close()
		if s.closed {
			return ErrClosed
		}
		return errors.New("switchsim: already listening")
	}
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(ln)
	s.log.Info("switchsim: listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address Listen bound, or "" before Listen.
func (s *Sim) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening, says goodbye to every client, stops every call
// timer and waits for the connection goroutines. Channels are dropped
// without events.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for _, ch := range s.channels {
		ch.stopTimer()
		if ch.peer != nil {
			ch.peer.stopTimer()
		}
		if ch.call != nil && ch.call.timer != nil {
			ch.call.timer.Stop()
		}
	}
	if s.sps.timer != nil {
		s.sps.timer.Stop()
	}
	if s.heartbeat != nil {
		s.heartbeat.Stop()
	}
	conns := s.conns
	s.conns = nil
	ln := s.ln
	s.mu.Unlock()
	s.closeARI()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		c.pushReply([]byte(disconnectNotice))
		c.closeGracefully()
	}
	s.wg.Wait()
	return nil
}

func (s *Sim) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		if s.refuseConns {
			s.mu.Unlock()
			s.wg.Add(1)
			go s.reject(nc)
			continue
		}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.log.Debug("switchsim: client connected", "remote", nc.RemoteAddr().String())
		s.wg.Add(2)
		go c.writeLoop()
		go c.readLoop()
	}
}

// removeConn stops delivering events to c.
func (s *Sim) removeConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.conns {
		if x == c {
			s.conns = append(s.conns[:i:i], s.conns[i+1:]...)
			return
		}
	}
}

// lock takes s.mu and advances the simulated "now" to the clock.
func (s *Sim) lock() {
	s.mu.Lock()
	s.advance(s.clock.Now())
}

// unlock runs the work queued with later, then releases s.mu.
func (s *Sim) unlock() {
	s.drain()
	s.mu.Unlock()
}

func (s *Sim) advance(t time.Time) {
	if t.After(s.now) {
		s.now = t
	}
}

// queue runs f after the current handler, before s.mu is released: the
// simulator's stand-in for work another FreeSWITCH thread does a moment
// later. Caller holds s.mu.
func (s *Sim) queue(f func()) { s.later = append(s.later, f) }

func (s *Sim) drain() {
	for len(s.later) > 0 {
		f := s.later[0]
		s.later[0] = nil
		s.later = s.later[1:]
		f()
	}
	s.later = s.later[:0]
}

// afterFunc runs f under s.mu once d of simulated time has passed. The
// event time is never earlier than the due time, so a 1 s callee behaviour
// always yields at least 1 s of billsec even when a scaled clock rounds.
// Caller holds s.mu.
func (s *Sim) afterFunc(d time.Duration, f func()) Timer {
	due := s.now.Add(d)
	return s.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		s.advance(s.clock.Now())
		s.advance(due)
		f()
		s.drain()
	})
}

// schedule replaces ch's pending timer with one running f after d, unless
// ch has hung up by then. Caller holds s.mu.
func (s *Sim) schedule(ch *channel, d time.Duration, f func()) {
	ch.stopTimer()
	if d <= 0 {
		s.queue(func() {
			if !ch.hungup {
				f()
			}
		})
		return
	}
	var t Timer
	t = s.afterFunc(d, func() {
		if ch.timer != t || ch.hungup {
			return
		}
		ch.timer = nil
		f()
	})
	ch.timer = t
}

func (s *Sim) scheduleHeartbeat() {
	s.heartbeat = s.afterFunc(20*time.Second, func() {
		e := s.newEvent("HEARTBEAT")
		s.addHeartbeatHeaders(e)
		s.emit(e)
		s.scheduleHeartbeat()
	})
}

func (s *Sim) addHeartbeatHeaders(e *event) {
	up := s.now.Sub(s.started)
	e.add("Event-Info", "System Ready")
	e.add("Up-Time", fmt.Sprintf("0 years, 0 days, %d hours, %d minutes, %d seconds, %d milliseconds, 0 microseconds",
		int(up.Hours()), int(up.Minutes())%60, int(up.Seconds())%60, up.Milliseconds()%1000))
	e.add("FreeSWITCH-Version", "1.10.12-release~64bit")
	e.add("Uptime-msec", fmt.Sprint(up.Milliseconds()))
	e.add("Max-Sessions", fmt.Sprint(s.maxSessions))
	e.add("Session-Count", fmt.Sprint(len(s.channels)))
	e.add("Max-Sessions-Per-Second", fmt.Sprint(s.sps.total))
	e.add("Session-Per-Sec", fmt.Sprint(s.sps.count))
	e.add("Session-Since-Startup", fmt.Sprint(s.sessionsTotal))
	e.add("Session-Peak-Max", fmt.Sprint(s.peak.max))
	e.add("Idle-CPU", "100.000000")
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (8 * i))
		b[8+i] = byte(lo >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 36)
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexd[c>>4], hexd[c&0x0f]
		j += 2
	}
	return string(out)
}

// ChannelInfo describes one live channel.
type ChannelInfo struct {
	UUID      string
	Name      string // e.g. loopback/1001-a
	Direction string // outbound or inbound
	State     string // e.g. CS_EXECUTE
	CallState string // DOWN, RINGING, ACTIVE
	Answered  bool
	Dest      string            // the dialled number as given in the dial string
	Foreign   bool              // not originated over ESL (StartForeignChannel)
	Created   time.Time         // simulated time
	Vars      map[string]string // channel variables (origination_caller_id_name, cg_*, …)

	order uint64
}

func (ch *channel) info() ChannelInfo {
	vars := make(map[string]string, len(ch.vars))
	for _, v := range ch.vars {
		vars[v.hname[len("variable_"):]] = v.value
	}
	return ChannelInfo{UUID: ch.uuid, Name: ch.name, Direction: ch.direction, State: ch.state,
		CallState: ch.callState, Answered: !ch.answered.IsZero(), Dest: ch.number,
		Foreign: ch.kind == legInbound, Created: ch.created, Vars: vars, order: ch.order}
}

// ChannelCount returns the number of live channels (a loopback call has
// two, so has an ARI Local call).
func (s *Sim) ChannelCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.channels)
	if s.ari != nil {
		n += len(s.ari.channels)
	}
	return n
}

// Channels lists the live channels, oldest first.
func (s *Sim) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChannelInfo, 0, len(s.channels))
	for _, ch := range s.channels {
		out = append(out, ch.info())
	}
	if s.ari != nil {
		for _, ch := range s.ari.channels {
			out = append(out, ch.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

// Channel returns the live channel with the UUID; false if there is none.
func (s *Sim) Channel(uuid string) (ChannelInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[uuid]
	if ch == nil {
		if s.ari != nil && s.ari.channels[uuid] != nil {
			return s.ari.channels[uuid].info(), true
		}
		return ChannelInfo{}, false
	}
	return ch.info(), true
}

// Originated returns how many originate commands (api and bgapi) the
// simulator has received, whatever their outcome, ARI originates
// (POST /channels and /channels/create) included.
func (s *Sim) Originated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.originated
}

// ConnectionCount returns the number of connected ESL clients.
func (s *Sim) ConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
