package asterisk

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/driverkit"
)

var (
	_ controller.Switch = (*Switch)(nil)
	_ controller.Media  = (*Switch)(nil)
)

// ErrNotConnected is wrapped when the events WebSocket is down.
var ErrNotConnected = controller.Errorf(controller.EUNAVAILABLE, "not connected to the switch")

// ErrAtCapacity is wrapped when callgate already has MaxSessions calls on the
// switch.
var ErrAtCapacity = controller.Errorf(controller.EREFUSED, "switch at its session limit")

// Switch is an Asterisk switch driven over ARI. Create it with New, then
// Start it; it is safe for concurrent use.
type Switch struct {
	cfg   Config
	rest  *restClient
	sink  controller.EventSink
	log   *slog.Logger
	calls *tracker
	disp  *dispatcher
	media *mediaHub
	stats counters
	pace  driverkit.Pacer

	mu      sync.Mutex // guards linkUp, ctx, cancel, started, stopped
	linkUp  bool
	ctx     context.Context // ends at Stop
	cancel  context.CancelFunc
	started bool
	stopped bool
	wg      sync.WaitGroup // supervisor and background recording work

	statusMu    sync.Mutex
	status      controller.SwitchStatus
	secureTrunk string // DeclareSecureTrunk's trunk; guarded by statusMu

	// watchDelay is how long after an originate a call with no event at all
	// is looked up (see watch); a test hook.
	watchDelay func(ring time.Duration) time.Duration
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
		rest:  newRESTClient(&cfg),
		sink:  sink,
		log:   log.With("switch", cfg.Name),
		calls: newTracker(),
		media: newMediaHub(),
		watchDelay: func(ring time.Duration) time.Duration {
			return ring + 10*time.Second
		},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.MaxCPS > 0 {
		s.pace.Interval = time.Second / time.Duration(cfg.MaxCPS)
	}
	s.disp = newDispatcher(&s.stats, s.handle, func() { s.sink.SwitchConnected(s.cfg.Name) })
	u, _ := url.Parse(cfg.URL)
	s.status = controller.SwitchStatus{Name: cfg.Name, Kind: "asterisk", Address: u.Host,
		MaxSessions: cfg.MaxSessions, MaxCPS: cfg.MaxCPS}
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
	if s.started || s.stopped {
		return controller.Errorf(controller.ECONFLICT, "switch %s already started", s.cfg.Name)
	}
	s.started = true
	go s.disp.run()
	stop := context.AfterFunc(ctx, s.cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer stop()
		s.supervise(s.ctx)
	}()
	return nil
}

// Stop closes the WebSocket, delivers the events already received and
// returns once no goroutine of the switch is left; the sink is not called
// after Stop returns. It is safe to call more than once.
func (s *Switch) Stop() {
	s.mu.Lock()
	started := s.started && !s.stopped
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.calls.stopTimers()
	if !started {
		return
	}
	s.wg.Wait()
	s.disp.close()
}

// Status reports the switch's health from cached state; it never blocks on
// the network.
//
// SecureMedia is confirmed by configuration only (see DeclareSecureTrunk):
// confirmed while connected with a declared secure trunk, unconfirmed while
// not connected, not_configured without a declaration.
func (s *Switch) Status() controller.SwitchStatus {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	st := s.status
	st.Sessions = s.calls.len()
	switch {
	case s.secureTrunk == "":
		st.SecureMedia, st.SecureMediaDetail = controller.SecureMediaNotConfigured, "no secure trunk declared"
	case !st.Connected:
		st.SecureMedia, st.SecureMediaDetail = controller.SecureMediaUnconfirmed, "not connected"
	default:
		st.SecureMedia = controller.SecureMediaConfirmed
		st.SecureMediaDetail = "by configuration only: the operator declared PJSIP endpoint " + s.secureTrunk +
			" with media_encryption=sdes over a TLS transport; ARI does not show it"
	}
	return st
}

// DeclareSecureTrunk records the operator's declaration that the PJSIP
// endpoint DialTemplate dials through, trunk (PJSIP/{number}@<trunk>), has
// media_encryption = sdes, media_encryption_optimistic = no and a TLS
// transport, as asterisk-conf/pjsip.conf ships it. Without it, calls that
// require TLS or SRTP are never sent to this switch. Call it before Start.
//
// callgate cannot verify the declaration over ARI (an endpoint's state
// does not include its media encryption), so the switch's SecureMedia
// status is confirmed by configuration only, and Asterisk chooses the SRTP
// suites it offers: MediaRequirement.Suites is not enforced per call here.
// Returns EINVALID if DialTemplate is not PJSIP/{number}@<trunk>.
func (s *Switch) DeclareSecureTrunk(trunk string) error {
	if !nameRE.MatchString(trunk) || s.cfg.DialTemplate != "PJSIP/{number}@"+trunk {
		return controller.FieldError("DialTemplate", "a secure trunk needs DialTemplate PJSIP/{number}@<trunk> with that trunk (got %q)", s.cfg.DialTemplate)
	}
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.secureTrunk = trunk
	return nil
}

// Stats are the driver's event counters since New.
type Stats struct {
	EventsQueued    uint64 // read and queued for the dispatcher
	EventsDelivered uint64 // passed to the sink
	EventsForeign   uint64 // channels callgate did not originate (the ;2 halves, other apps' channels)
	EventsMalformed uint64 // frames that are not ARI events
	EventsOverflow  uint64 // dropped because the queue was full
	InFlight        int    // calls callgate is tracking
}

// Stats returns the event counters.
func (s *Switch) Stats() Stats {
	return Stats{
		EventsQueued:    s.stats.queued.Load(),
		EventsDelivered: s.stats.delivered.Load(),
		EventsForeign:   s.stats.foreign.Load(),
		EventsMalformed: s.stats.malformed.Load(),
		EventsOverflow:  s.stats.overflow.Load(),
		InFlight:        s.calls.len(),
	}
}

func (s *Switch) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.linkUp
}

func (s *Switch) updateStatus(f func(st *controller.SwitchStatus)) {
	s.statusMu.Lock()
	f(&s.status)
	s.statusMu.Unlock()
}

// supervise keeps the events WebSocket up until ctx ends.
func (s *Switch) supervise(ctx context.Context) {
	attempt, connects := 0, 0
	for ctx.Err() == nil {
		ws, err := s.connect(ctx, connects)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("cannot connect to switch", "err", err, "attempt", attempt+1)
			s.updateStatus(func(st *controller.SwitchStatus) { st.LastError = s.scrub(err.Error()) })
			if !driverkit.SleepCtx(ctx, driverkit.Backoff(attempt, s.cfg.ReconnectMin, s.cfg.ReconnectMax)) {
				return
			}
			attempt++
			continue
		}
		connects++
		since := time.Now()
		linkCtx, kill := context.WithCancelCause(ctx)
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			kill(s.readEvents(ws))
		}()
		s.heartbeat(linkCtx, kill)
		_ = ws.Close()
		<-readerDone // everything it read is queued
		s.mu.Lock()
		s.linkUp = false
		s.mu.Unlock()
		s.disp.mark(markLinkLost)
		cause := context.Cause(linkCtx)
		s.updateStatus(func(st *controller.SwitchStatus) {
			st.Connected = false
			if ctx.Err() == nil {
				st.LastError = s.scrub(cause.Error())
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("lost the events WebSocket", "err", cause)
		if time.Since(since) >= s.cfg.ReconnectMax {
			attempt = 0
		}
		if !driverkit.SleepCtx(ctx, driverkit.Backoff(attempt, s.cfg.ReconnectMin, s.cfg.ReconnectMax)) {
			return
		}
		attempt++
	}
}

// connect opens the events WebSocket for App (subscribeAll=false) and checks
// REST with a ping. Once it returns the app is registered, Status says
// connected and the sink will hear SwitchConnected, behind every event
// queued before.
func (s *Switch) connect(ctx context.Context, before int) (*websocket.Conn, error) {
	q := url.Values{"app": {s.cfg.App}, "subscribeAll": {"false"}}
	wcfg, err := websocket.NewConfig(s.cfg.WebSocketURL+"?"+q.Encode(), originFor(s.cfg.URL))
	if err != nil {
		return nil, fmt.Errorf("events WebSocket: %w", err)
	}
	wcfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.cfg.User+":"+s.cfg.Password)))
	wcfg.Dialer = &net.Dialer{Timeout: s.cfg.RequestTimeout}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	ws, err := wcfg.DialContext(dctx)
	if err != nil {
		return nil, fmt.Errorf("events WebSocket: %w", err)
	}
	if err := s.rest.do(ctx, "ping", "GET", "/asterisk/ping", nil, nil); err != nil {
		_ = ws.Close()
		return nil, err
	}
	s.mu.Lock()
	s.linkUp = true
	s.mu.Unlock()
	now := time.Now()
	s.updateStatus(func(st *controller.SwitchStatus) {
		st.Connected, st.ConnectedAt, st.LastError, st.Reconnects = true, now, "", before
	})
	s.log.Info("connected to switch", "reconnects", before)
	s.disp.mark(markConnected)
	return ws, nil
}

func originFor(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return "http://localhost/"
	}
	return u.Scheme + "://" + u.Host + "/"
}

// readEvents reads the WebSocket in order, on one goroutine, and queues the
// events of callgate's channels and media for the dispatcher. It never waits
// for the sink. It returns the read error that ended it.
//
// Why not the library's bus: client/native reads the socket in a goroutine
// that hands each event to stdbus, whose subscriptions are 100-event
// channels written with a non-blocking send (events are dropped silently
// when a subscriber lags), each subscriber then runs on its own goroutine
// (no order across subscriptions), and its reconnect loop sleeps a fixed
// second and tells nobody it reconnected. callgate needs every event of a
// call, in Asterisk's order, and a SwitchConnected after each reconnect.
func (s *Switch) readEvents(ws *websocket.Conn) error {
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return fmt.Errorf("events WebSocket: %w", err)
		}
		s.intake(data)
	}
}

// intake decodes one frame and queues it if it concerns callgate.
func (s *Switch) intake(data []byte) {
	ev, err := decodeEvent(data)
	if err != nil {
		s.stats.malformed.Add(1)
		return
	}
	if !s.wanted(&ev) {
		s.stats.foreign.Add(1)
		return
	}
	s.disp.push(inboxItem{ev: ev})
}

// wanted filters at the reader: events of tracked calls, of the driver's own
// helper channels (snoops, transfer legs) and of its playbacks and
// recordings. The ;2 half of a Local channel never matches: its id is
// "<call id>;2".
func (s *Switch) wanted(ev *event) bool {
	switch ev.Type {
	case evPlaybackStarted, evPlaybackFinished:
		return s.media.hasObject(ev.Playback.ID)
	case evRecordingStarted, evRecordingFinished, evRecordingFailed:
		return s.media.hasObject(ev.Recording.Name)
	}
	id := ev.channelID()
	if id == "" || strings.IndexByte(id, ';') >= 0 {
		return false
	}
	return s.calls.has(id) || s.media.hasObject(id)
}

// heartbeat pings REST every HeartbeatInterval until the link dies or ctx
// ends; a failed ping kills the link (a half-open TCP connection shows no
// read error for a long time).
func (s *Switch) heartbeat(ctx context.Context, kill context.CancelCauseFunc) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.rest.do(ctx, "ping", "GET", "/asterisk/ping", nil, nil); err != nil {
				if ctx.Err() == nil {
					kill(fmt.Errorf("heartbeat: %w", err))
				}
				return
			}
		}
	}
}

// scrub removes the password from text bound for logs or Status.
func (s *Switch) scrub(text string) string {
	if s.cfg.Password == "" {
		return text
	}
	return strings.ReplaceAll(text, s.cfg.Password, "***")
}
