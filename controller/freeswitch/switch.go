// Package freeswitch drives a FreeSWITCH media server over its inbound Event
// Socket (ESL). It is the only package in callgate that imports eslgo.
//
// One *Switch owns two connections to its switch: eslgo's carries commands,
// serialised, and heart-beats with `api status`; a second one, read by
// callgate's own sequential frame reader (eventconn.go, eventparse.go),
// carries the channel events callgate subscribes to. A supervisor goroutine
// dials both, and when either fails closes both and re-dials them with
// exponential backoff and full jitter. The reader queues the events of the
// channels callgate originated; one dispatcher goroutine (dispatch.go)
// delivers them, in the order the switch sent them, to the
// controller.EventSink.
package freeswitch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/driverkit"
)

var _ controller.Switch = (*Switch)(nil)

// Config configures one FreeSWITCH switch. The environment variable names are
// the ones cmd/callgate reads for a switch named NAME.
type Config struct {
	// Name identifies the switch in events and the API. CALLGATE_FS_<NAME>_NAME
	Name string
	// Address is the ESL host:port, loopback or a private link only.
	// CALLGATE_FS_<NAME>_ADDRESS
	Address string
	// Password is the ESL password. Never logged. CALLGATE_FS_<NAME>_PASSWORD
	Password string
	// DialTemplate builds the endpoint from the number, e.g.
	// "sofia/gateway/{trunk}/{number}" or "loopback/{number}/callgate-test".
	// {number} is required. CALLGATE_FS_<NAME>_DIAL_TEMPLATE
	DialTemplate string
	// Trunk replaces {trunk} in DialTemplate: the default trunk, for
	// requests that name none. CALLGATE_FS_<NAME>_TRUNK
	Trunk string
	// Trunks are the other trunks an OriginateRequest may name (routing
	// rules choose them); a request naming any other trunk is refused.
	// They need {trunk} in DialTemplate. With SecureProfile, each must be
	// a gateway of that profile like Trunk. cmd/callgate fills it from
	// switches[].trunks (YAML only).
	Trunks []string
	// MaxSessions caps callgate's concurrent calls on the switch; 0 means no
	// cap. CALLGATE_FS_<NAME>_MAX_SESSIONS
	MaxSessions int
	// MaxCPS caps originates per second from this driver; 0 means no cap.
	// CALLGATE_FS_<NAME>_MAX_CPS
	MaxCPS int
	// HeartbeatInterval is how often `api status` checks the connection;
	// default 10s. CALLGATE_FS_<NAME>_HEARTBEAT
	HeartbeatInterval time.Duration
	// CommandTimeout bounds the event connection's dial and handshake,
	// authentication and every command; default 5s.
	// CALLGATE_FS_<NAME>_COMMAND_TIMEOUT
	CommandTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the re-dial backoff; defaults
	// 200ms and 30s. CALLGATE_FS_<NAME>_RECONNECT_MIN, _RECONNECT_MAX
	ReconnectMin, ReconnectMax time.Duration
	// AllowedVariables lists channel variables API users may set besides
	// the cg_… namespace (FreeSWITCH acts on many variables; see
	// dialPlan.allowedVar). CALLGATE_FS_<NAME>_ALLOWED_VARIABLES (comma list)
	AllowedVariables []string
	// SecureProfile is the sofia profile with TLS signalling that
	// DialTemplate's calls leave through, e.g. "external-tls"; empty means
	// this switch cannot carry calls that require TLS or SRTP
	// (SecureMediaNotConfigured). Setting it is the operator's declaration
	// that the endpoint is TLS, checked as far as callgate can see (see
	// secure.go): DialTemplate must be sofia/gateway/<gateway>/… with the
	// gateway defined under this profile (freeswitch-conf/sip_profiles/
	// external-tls/), or sofia/<SecureProfile>/…;transport=tls. The driver
	// confirms with `api sofia status profile <SecureProfile>` that the
	// profile runs with a TLS transport. CALLGATE_FS_<NAME>_SECURE_PROFILE
	SecureProfile string
	// SecureCheckInterval is how often, while connected, the SecureProfile
	// check is repeated (it also runs on every connect); default 60s.
	// CALLGATE_FS_<NAME>_SECURE_CHECK_INTERVAL
	SecureCheckInterval time.Duration
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
var trunkRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// withDefaults fills the zero durations.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatInterval, 10*time.Second)
	def(&c.CommandTimeout, 5*time.Second)
	def(&c.ReconnectMin, 200*time.Millisecond)
	def(&c.ReconnectMax, 30*time.Second)
	def(&c.SecureCheckInterval, time.Minute)
	return c
}

// Validate checks the configuration (after defaults are applied) and returns
// an EINVALID error naming the first bad field.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return controller.FieldError(field, format, args...)
	}
	if !nameRE.MatchString(c.Name) {
		return bad("Name", "must be 1-64 letters, digits, _ . or -")
	}
	if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
		return bad("Address", "must be host:port")
	}
	if c.Password == "" || strings.ContainsFunc(c.Password, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("Password", "must be non-empty without spaces or control characters")
	}
	if c.Trunk != "" && !trunkRE.MatchString(c.Trunk) {
		return bad("Trunk", "must be 1-64 letters, digits, _ . or -")
	}
	if err := validateDialTemplate(c.DialTemplate, c.Trunk); err != nil {
		return bad("DialTemplate", "%v", err)
	}
	for _, t := range c.Trunks {
		if !trunkRE.MatchString(t) {
			return bad("Trunks", "%q must be 1-64 letters, digits, _ . or -", t)
		}
		if !strings.Contains(c.DialTemplate, "{trunk}") {
			return bad("Trunks", "other trunks need {trunk} in DialTemplate")
		}
		if err := validateDialTemplate(c.DialTemplate, t); err != nil {
			return bad("Trunks", "trunk %q: %v", t, err)
		}
	}
	if c.MaxSessions < 0 {
		return bad("MaxSessions", "must not be negative")
	}
	if c.MaxCPS < 0 {
		return bad("MaxCPS", "must not be negative")
	}
	for field, d := range map[string]time.Duration{"HeartbeatInterval": c.HeartbeatInterval,
		"CommandTimeout": c.CommandTimeout, "ReconnectMin": c.ReconnectMin,
		"ReconnectMax": c.ReconnectMax, "SecureCheckInterval": c.SecureCheckInterval} {
		if d <= 0 {
			return bad(field, "must be positive")
		}
	}
	if c.ReconnectMin > c.ReconnectMax {
		return bad("ReconnectMin", "must not exceed ReconnectMax")
	}
	for _, v := range c.AllowedVariables {
		if !varNameRE.MatchString(v) || isReserved(v) {
			return bad("AllowedVariables", "%q is not a settable variable name", v)
		}
	}
	if c.SecureProfile != "" {
		if !trunkRE.MatchString(c.SecureProfile) {
			return bad("SecureProfile", "must be 1-64 letters, digits, _ . or -")
		}
		if err := checkSecureTemplate(c.DialTemplate, c.Trunk, c.SecureProfile); err != nil {
			return bad("DialTemplate", "%v", err)
		}
		for _, t := range c.Trunks {
			if err := checkSecureTemplate(c.DialTemplate, t, c.SecureProfile); err != nil {
				return bad("Trunks", "trunk %q: %v", t, err)
			}
		}
	}
	return nil
}

// Switch is a FreeSWITCH switch driven over ESL. Create it with New, then
// Start it; it is safe for concurrent use.
type Switch struct {
	cfg   Config
	plan  dialPlan
	sink  controller.EventSink
	log   *slog.Logger
	calls *tracker
	disp  *dispatcher
	stats counters
	pace  driverkit.Pacer

	mu      sync.Mutex // guards cur, cancel, started, stopped
	cur     *conn      // the command connection, set while both are up
	cancel  context.CancelFunc
	started bool
	stopped bool
	wg      sync.WaitGroup

	statusMu sync.Mutex
	status   controller.SwitchStatus

	media execs // IVR steps waiting for their completion
}

// New returns a stopped Switch delivering events to sink. Returns an EINVALID
// error naming the field if cfg is invalid.
func New(cfg Config, sink controller.EventSink) (*Switch, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, controller.FieldError("sink", "must not be nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Switch{
		cfg:   cfg,
		plan:  dialPlan{template: cfg.DialTemplate, trunk: cfg.Trunk, trunks: map[string]bool{}, allowedNames: map[string]bool{}},
		sink:  sink,
		log:   log.With("switch", cfg.Name),
		calls: newTracker(),
	}
	for _, v := range cfg.AllowedVariables {
		s.plan.allowedNames[v] = true
	}
	for _, t := range cfg.Trunks {
		s.plan.trunks[t] = true
	}
	if cfg.MaxCPS > 0 {
		s.pace.Interval = time.Second / time.Duration(cfg.MaxCPS)
	}
	s.disp = newDispatcher(&s.stats, s.deliver, func() { s.sink.SwitchConnected(s.cfg.Name) })
	s.status = controller.SwitchStatus{Name: cfg.Name, Kind: "freeswitch", Address: cfg.Address,
		MaxSessions: cfg.MaxSessions, MaxCPS: cfg.MaxCPS}
	s.status.SecureMedia, s.status.SecureMediaDetail = s.secureUnknown("not connected")
	return s, nil
}

// Name returns the switch's configured name.
func (s *Switch) Name() string { return s.cfg.Name }

// Start launches the supervisor and the event dispatcher and returns at
// once; the switch connects in the background and calls
// sink.SwitchConnected after every (re)connect. Cancelling ctx stops the
// supervisor as Stop does. Returns ECONFLICT if the switch was started
// before.
func (s *Switch) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return controller.Errorf(controller.ECONFLICT, "switch %s already started", s.cfg.Name)
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	go s.disp.run()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.supervise(ctx)
	}()
	return nil
}

// Stop closes the connections, delivers the events already received and
// returns once no goroutine of the switch is left; the sink is not called
// after Stop returns. It is safe to call more than once.
func (s *Switch) Stop() {
	s.mu.Lock()
	if s.stopped || !s.started {
		s.stopped = true
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
	s.disp.close()
}

// Status reports the switch's health from cached state; it never blocks on
// the network.
func (s *Switch) Status() controller.SwitchStatus {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.status
}

// Stats are the driver's event counters since New.
type Stats struct {
	EventsQueued    uint64 // read and queued for the dispatcher
	EventsDelivered uint64 // passed to the sink
	EventsIgnored   uint64 // names callgate does not map, jobs other than originate
	EventsForeign   uint64 // channels or jobs callgate did not originate (loopback -b legs, inbound calls, other apps)
	EventsMalformed uint64 // bodies with an invalid inner Content-Length
	EventsOverflow  uint64 // dropped because the queue was full
	InFlight        int    // channels callgate is tracking
}

// Stats returns the event counters.
func (s *Switch) Stats() Stats {
	return Stats{
		EventsQueued:    s.stats.queued.Load(),
		EventsDelivered: s.stats.delivered.Load(),
		EventsIgnored:   s.stats.ignored.Load(),
		EventsForeign:   s.stats.foreign.Load(),
		EventsMalformed: s.stats.malformed.Load(),
		EventsOverflow:  s.stats.overflow.Load(),
		InFlight:        s.calls.len(),
	}
}

// Track registers a call the switch already has (one originated before a
// restart) so its events are delivered again. A malformed id is ignored.
func (s *Switch) Track(id controller.CallID) {
	if !validUUID(string(id)) {
		s.log.Warn("not tracking malformed call id")
		return
	}
	s.calls.adopt(id, s.log.With("call_id", id))
}

// current returns the live command connection or nil.
func (s *Switch) current() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && !s.cur.alive() {
		return nil
	}
	return s.cur
}

func (s *Switch) setCurrent(c *conn) {
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
}

func (s *Switch) updateStatus(f func(st *controller.SwitchStatus)) {
	s.statusMu.Lock()
	f(&s.status)
	s.statusMu.Unlock()
}

// supervise keeps both connections up until ctx ends.
func (s *Switch) supervise(ctx context.Context) {
	attempt := 0
	connects := 0
	for ctx.Err() == nil {
		c, ec, err := s.connect(ctx, connects)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("cannot connect to switch", "err", err, "attempt", attempt+1)
			s.updateStatus(func(st *controller.SwitchStatus) { st.LastError = scrubSecret(err.Error(), s.cfg.Password) })
			if !driverkit.SleepCtx(ctx, driverkit.Backoff(attempt, s.cfg.ReconnectMin, s.cfg.ReconnectMax)) {
				return
			}
			attempt++
			continue
		}
		connects++
		s.log.Info("connected to switch", "address", s.cfg.Address, "reconnects", connects-1)
		s.heartbeat(ctx, c)

		s.setCurrent(nil)
		c.close(errors.New("connection closed"))
		ec.close() // its reader has queued everything it read
		s.media.failAll(controller.Errorf(controller.EUNAVAILABLE, "the connection to switch %s was lost during the step", s.cfg.Name))
		cause := context.Cause(c.ctx)
		s.updateStatus(func(st *controller.SwitchStatus) {
			st.Connected = false
			st.SecureMedia, st.SecureMediaDetail = s.secureUnknown("not connected")
			if ctx.Err() == nil {
				st.LastError = scrubSecret(cause.Error(), s.cfg.Password)
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("lost connection to switch", "err", cause)
		if time.Since(c.since) >= s.cfg.ReconnectMax {
			attempt = 0 // it was healthy for a while: start the backoff over
		}
		if !driverkit.SleepCtx(ctx, driverkit.Backoff(attempt, s.cfg.ReconnectMin, s.cfg.ReconnectMax)) {
			return
		}
		attempt++
	}
}

// connect dials the command connection, then the event connection, which it
// subscribes and starts reading, then reads the switch's status. On success
// the command connection is current, Status says so and the sink will hear
// SwitchConnected: no originate is sent before the events are subscribed.
// The event reader kills the command connection (c.kill) when it stops, so
// c.ctx ends when either connection fails. before is how many connections
// came before this one.
func (s *Switch) connect(ctx context.Context, before int) (*conn, *eventConn, error) {
	c, err := dialESL(ctx, &s.cfg, s.log)
	if err != nil {
		return nil, nil, err
	}
	ec, err := dialEvents(c.ctx, &s.cfg)
	if err != nil {
		err = fmt.Errorf("event connection: %w", err)
		c.close(err)
		return nil, nil, err
	}
	go func() {
		defer close(ec.done)
		err := s.readEvents(ec.r)
		c.kill(fmt.Errorf("event connection: %w", err))
	}()
	if err := s.checkStatus(ctx, c); err != nil {
		c.close(err)
		ec.close()
		return nil, nil, err
	}
	s.checkSecure(ctx, c) // before Connected: no call needing TLS is sent unverified
	s.setCurrent(c)
	s.updateStatus(func(st *controller.SwitchStatus) {
		st.Connected, st.ConnectedAt, st.LastError, st.Reconnects = true, c.since, "", before
	})
	s.disp.mark(markConnected)
	return c, ec, nil
}

// heartbeat checks the command connection every HeartbeatInterval until
// either connection dies or ctx ends. eslgo reports a disconnect only on EOF
// or a disconnect notice; any other read error silently stops its read loop,
// which only an unanswered command reveals.
func (s *Switch) heartbeat(ctx context.Context, c *conn) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	secureAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ctx.Done():
			return
		case <-t.C:
			if err := s.checkStatus(ctx, c); err != nil {
				c.kill(fmt.Errorf("heartbeat: %w", err))
				return
			}
			if time.Since(secureAt) >= s.cfg.SecureCheckInterval {
				secureAt = time.Now()
				s.checkSecure(ctx, c)
			}
		}
	}
}

// checkStatus runs `api status` and caches the session counts.
func (s *Switch) checkStatus(ctx context.Context, c *conn) error {
	resp, err := c.run(ctx, "api status", statusCommand)
	if err != nil {
		return err
	}
	if msg := replyError(resp); msg != "" {
		return fmt.Errorf("api status: switch replied %q", msg)
	}
	st, ok := parseStatus(string(resp.Body))
	if !ok {
		s.log.Debug("cannot parse api status reply")
		return nil
	}
	s.updateStatus(func(x *controller.SwitchStatus) { x.Sessions, x.SwitchMax = st.sessions, st.max })
	return nil
}

// deliver maps one event that onEvent queued and hands it to the sink. It
// runs on the dispatcher goroutine, in the order the events were read.
func (s *Switch) deliver(ev *event) {
	if ev.get(hEventName) == eventBackgroundJob {
		s.deliverJob(ev)
		return
	}
	ce, ok := mapChannelEvent(s.cfg.Name, ev)
	if !ok {
		s.stats.ignored.Add(1)
		return
	}
	if _, ok := s.calls.channelEvent(ce.CallID, ce.Kind == controller.EventDestroy); !ok {
		s.stats.foreign.Add(1) // forgotten since it was queued
		return
	}
	s.media.event(ce, ev)
	s.sink.HandleChannelEvent(ce)
	s.stats.delivered.Add(1)
}

func (s *Switch) deliverJob(ev *event) {
	j := parseJob(ev)
	id, ok := s.calls.resolveJob(j)
	if !ok {
		s.stats.foreign.Add(1)
		return
	}
	log := s.calls.jobFinished(id, j.accepted)
	if !j.accepted && log != nil {
		log.Info("switch failed the originate", "cause", j.cause)
	}
	s.sink.HandleChannelEvent(mapJob(s.cfg.Name, id, j))
	s.stats.delivered.Add(1)
}
