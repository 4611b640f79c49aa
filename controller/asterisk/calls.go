package asterisk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// callState is one call callgate originated (or adopted with Track). The
// fields below the line are owned by the dispatcher goroutine.
type callState struct {
	id    controller.CallID
	log   *slog.Logger
	reg   uint64
	timer *time.Timer // the vanish watch; guarded by tracker.mu

	absent     int // consecutive channel listings without it; tracker.mu
	created    time.Time
	answeredAt time.Time
	seen       bool // any event of the channel arrived
	progressed bool
	answered   bool
	accepted   bool
	stasis     bool
	dialStatus string // last final Dial status
}

// tracker is the set of calls whose events callgate delivers. A call is
// registered before its originate is sent and forgotten at its
// ChannelDestroyed.
type tracker struct {
	mu    sync.RWMutex
	calls map[string]*callState
	reg   uint64
}

func newTracker() *tracker { return &tracker{calls: map[string]*callState{}} }

type addResult int

const (
	added addResult = iota
	addDuplicate
	addFull
)

func (t *tracker) add(id controller.CallID, log *slog.Logger, max int, adopted bool) addResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.calls[string(id)]; ok {
		return addDuplicate
	}
	if max > 0 && len(t.calls) >= max && !adopted {
		return addFull
	}
	t.reg++
	c := &callState{id: id, log: log, reg: t.reg, created: time.Now().UTC()}
	if adopted {
		c.seen, c.accepted, c.created = true, true, time.Time{}
	}
	t.calls[string(id)] = c
	return added
}

func (t *tracker) get(id string) *callState {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.calls[id]
}

func (t *tracker) has(id string) bool { return t.get(id) != nil }

func (t *tracker) remove(id controller.CallID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.calls[string(id)]; ok {
		if c.timer != nil {
			c.timer.Stop()
		}
		delete(t.calls, string(id))
	}
}

func (t *tracker) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.calls)
}

func (t *tracker) setTimer(id controller.CallID, d time.Duration, f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.calls[string(id)]; ok {
		if c.timer != nil {
			c.timer.Stop()
		}
		c.timer = time.AfterFunc(d, f)
	}
}

func (t *tracker) stopTimers() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.calls {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
}

func (t *tracker) mark() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.reg
}

// prune forgets calls registered before the listing (reg <= before) that two
// consecutive listings did not show: their ChannelDestroyed was lost across
// a reconnect.
func (t *tracker) prune(listed map[string]bool, before uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, c := range t.calls {
		if listed[id] {
			c.absent = 0
			continue
		}
		if c.reg > before {
			continue
		}
		if c.absent++; c.absent >= 2 {
			if c.timer != nil {
				c.timer.Stop()
			}
			delete(t.calls, id)
			n++
		}
	}
	return n
}

var (
	// idRE is what callgate uses as an ARI id (channelId, playbackId, …):
	// no '/', '?', '%', ';' or anything else a URL path or query would read.
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	numberRE = regexp.MustCompile(`^\+?[0-9]{1,32}$`)
	cidName  = regexp.MustCompile(`^[A-Za-z0-9 .,'_-]{0,40}$`)
)

// endpoint expands the dial template with a checked number and trunk
// (empty: Trunk, the default). Returns EINVALID naming "trunk" for a trunk
// the switch does not have (Trunk and Trunks).
func (s *Switch) endpoint(number, trunk string) (string, error) {
	if !numberRE.MatchString(number) {
		return "", controller.FieldError("to", "must be digits with an optional leading +")
	}
	switch {
	case trunk == "" || trunk == s.cfg.Trunk:
		trunk = s.cfg.Trunk
	case !trunkRE.MatchString(trunk):
		return "", controller.FieldError("trunk", "must be 1-64 letters, digits, _ . or -")
	case !slices.Contains(s.cfg.Trunks, trunk):
		return "", controller.FieldError("trunk", "%q is not a trunk of this switch", trunk)
	}
	return strings.NewReplacer("{number}", number, "{trunk}", trunk).Replace(s.cfg.DialTemplate), nil
}

// ErrMediaInsecure is wrapped (with controller.ErrNotSent) when a call that
// requires TLS or SRTP reaches a switch without a declared secure trunk
// (DeclareSecureTrunk), or one not connected.
var ErrMediaInsecure = controller.Errorf(controller.EREFUSED, "%s: no secure (TLS, SDES SRTP) trunk confirmed on this switch", controller.ReasonMediaInsecure)

// originateQuery builds POST /channels' parameters. url.Values escapes
// them; every part is checked first anyway.
func (s *Switch) originateQuery(req controller.OriginateRequest) (url.Values, error) {
	if !idRE.MatchString(string(req.CallID)) {
		return nil, controller.FieldError("call_id", "must be 1-128 letters, digits, . _ or -")
	}
	ep, err := s.endpoint(req.To, req.Trunk)
	if err != nil {
		return nil, err
	}
	if req.Endpoint != "" && req.Endpoint != ep {
		return nil, controller.FieldError("endpoint", "must be the switch's dial template applied to the number")
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if timeout < 0 || timeout > time.Hour {
		return nil, controller.FieldError("timeout", "must be between 1 s and 1 h")
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	q := url.Values{"endpoint": {ep}, "app": {s.cfg.App}, "channelId": {string(req.CallID)},
		"timeout": {strconv.Itoa(secs)}}
	if req.CallerIDNumber != "" || req.CallerIDName != "" {
		if req.CallerIDNumber != "" && !numberRE.MatchString(req.CallerIDNumber) {
			return nil, controller.FieldError("caller_id_number", "must be digits with an optional leading +")
		}
		if !cidName.MatchString(req.CallerIDName) {
			return nil, controller.FieldError("caller_id_name", "must be at most 40 letters, digits, blanks or .,'_-")
		}
		cid := "<" + req.CallerIDNumber + ">"
		if req.CallerIDName != "" {
			cid = `"` + req.CallerIDName + `" ` + cid
		}
		q.Set("callerId", cid)
	}
	if len(req.Variables) > 0 {
		return nil, controller.FieldError("variables", "channel variables are not supported on Asterisk")
	}
	return q, nil
}

// Originate places req with POST /channels (endpoint from DialTemplate,
// app=App, channelId=CallID) and returns once Asterisk has created the
// channel. Asterisk answers 200 even for a call that fails at once; the
// outcome arrives as events (see doc.go). The call is tracked before the
// request is sent, so no event is missed.
//
// Returns EINVALID naming the field for input that cannot be carried safely;
// an error wrapping controller.ErrNotSent when the request certainly did not
// reach Asterisk (not connected, connection refused, MaxSessions reached,
// ctx ended while pacing), which may be retried; ECONFLICT if the call is
// already in flight or Asterisk has a channel with that id; EREFUSED when
// Asterisk rejected the request; any other error (a timeout after sending)
// is ambiguous: the call may exist and must never be originated again. A
// request whose Media requires TLS or SRTP is sent only while SecureMedia
// is confirmed (DeclareSecureTrunk), else it returns an error wrapping
// controller.ErrNotSent and ErrMediaInsecure.
func (s *Switch) Originate(ctx context.Context, req controller.OriginateRequest) error {
	q, err := s.originateQuery(req)
	if err != nil {
		return fmt.Errorf("originating call on %s: %w", s.cfg.Name, err)
	}
	id := req.CallID
	log := s.log.With("call_id", id)
	notSent := func(cause error) error {
		return fmt.Errorf("originating call %s on %s: %w: %w", id, s.cfg.Name, controller.ErrNotSent, cause)
	}
	if req.Media.Required() {
		if st := s.Status(); st.SecureMedia != controller.SecureMediaConfirmed {
			log.Warn("originate not sent: secure media not confirmed", "to", controller.MaskNumber(req.To), "secure_media", st.SecureMedia)
			return notSent(fmt.Errorf("%w (%s: %s)", ErrMediaInsecure, st.SecureMedia, st.SecureMediaDetail))
		}
	}
	if !s.connected() {
		return notSent(ErrNotConnected)
	}
	if err := s.pace.Wait(ctx); err != nil {
		return notSent(err)
	}
	if !s.connected() {
		return notSent(ErrNotConnected)
	}
	switch s.calls.add(id, log, s.cfg.MaxSessions, false) {
	case addDuplicate:
		return controller.Errorf(controller.ECONFLICT, "call %s is already in flight on %s", id, s.cfg.Name)
	case addFull:
		return notSent(ErrAtCapacity)
	}
	err = s.rest.do(ctx, "originate", "POST", "/channels", q, nil)
	var re *restError
	switch {
	case err == nil:
	case errors.As(err, &re) && !re.sent:
		s.calls.remove(id)
		log.Warn("originate not sent", "to", controller.MaskNumber(req.To), "err", err)
		return notSent(err)
	case errors.As(err, &re) && re.status != 0:
		s.calls.remove(id) // Asterisk answered with an error: no channel was created by this request
		log.Warn("switch refused the originate", "to", controller.MaskNumber(req.To), "status", re.status, "reply", re.message)
		return fmt.Errorf("originating call %s: %w", id, asController(s.cfg.Name, err))
	default:
		log.Error("originate sent but not acknowledged; never retry it", "to", controller.MaskNumber(req.To), "err", err)
		return fmt.Errorf("originating call %s on %s: %w", id, s.cfg.Name,
			controller.Errorf(controller.EUNAVAILABLE, "originate sent, no reply: %v", err))
	}
	ring := time.Duration(atoiDefault(q.Get("timeout"), 60)) * time.Second
	s.watch(id, s.watchDelay(ring))
	log.Info("originate accepted", "to", controller.MaskNumber(req.To), "from", controller.MaskNumber(req.CallerIDNumber))
	return nil
}

func atoiDefault(v string, d int) int {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return d
}

// watch looks the call up after d if not a single event of its channel has
// arrived by then. README (09b): an originate into a Stasis app that is not
// registered on that Asterisk is answered, Stasis() fails and the channel
// disappears without any event on callgate's WebSocket. A 404 then ends the
// call with causeUnregisteredApp, through the inbox so it keeps its order.
func (s *Switch) watch(id controller.CallID, d time.Duration) {
	s.calls.setTimer(id, d, func() {
		c := s.calls.get(string(id))
		if c == nil || s.ctx.Err() != nil {
			return
		}
		err := s.rest.do(s.ctx, "get channel", "GET", "/channels/"+url.PathEscape(string(id)), nil, nil)
		var re *restError
		switch {
		case errors.As(err, &re) && re.status == 404:
			s.disp.push(inboxItem{vanished: id})
		case s.ctx.Err() == nil:
			s.watch(id, s.watchDelay(0))
		}
	})
}

// Hangup ends a call with DELETE /channels/{id}?reason_code=<Q.850 code>;
// an empty cause is NORMAL_CLEARING. Returns EINVALID for a malformed id or
// an unknown cause, ENOTFOUND if Asterisk has no such channel, EUNAVAILABLE
// when it cannot be asked.
func (s *Switch) Hangup(ctx context.Context, id controller.CallID, cause string) error {
	if !idRE.MatchString(string(id)) {
		return controller.FieldError("call_id", "must be 1-128 letters, digits, . _ or -")
	}
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	code, ok := controller.HangupCauses[cause]
	if !ok || code > 127 {
		if !ok {
			return controller.FieldError("cause", "unknown hangup cause")
		}
		code = 16 // FreeSWITCH-only causes (ORIGINATOR_CANCEL, …) have no Q.850 code
	}
	if !s.connected() {
		return fmt.Errorf("hanging up call %s on %s: %w", id, s.cfg.Name, ErrNotConnected)
	}
	err := s.rest.do(ctx, "hangup", "DELETE", "/channels/"+url.PathEscape(string(id)),
		url.Values{"reason_code": {strconv.Itoa(code)}}, nil)
	if err != nil {
		return fmt.Errorf("hanging up call %s: %w", id, asController(s.cfg.Name, err))
	}
	return nil
}

// Track registers a call Asterisk already has (one originated before a
// restart) so its events are delivered again. A malformed id is ignored.
func (s *Switch) Track(id controller.CallID) {
	if !idRE.MatchString(string(id)) {
		s.log.Warn("not tracking malformed call id")
		return
	}
	s.calls.add(id, s.log.With("call_id", id), 0, true)
}

// Channels lists Asterisk's live channels (GET /channels), every channel,
// the ;2 halves of Local channels included; Answered is state Up. As a side
// effect a tracked call missing from two consecutive listings is forgotten.
// Returns EUNAVAILABLE when the switch is not connected or does not answer.
func (s *Switch) Channels(ctx context.Context) ([]controller.Channel, error) {
	if !s.connected() {
		return nil, fmt.Errorf("listing channels on %s: %w", s.cfg.Name, ErrNotConnected)
	}
	before := s.calls.mark()
	var list []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"`
	}
	if err := s.rest.do(ctx, "list channels", "GET", "/channels", nil, &list); err != nil {
		return nil, fmt.Errorf("listing channels: %w", asController(s.cfg.Name, err))
	}
	out := make([]controller.Channel, 0, len(list))
	listed := make(map[string]bool, len(list))
	for _, ch := range list {
		listed[ch.ID] = true
		out = append(out, controller.Channel{UUID: ch.ID, Name: ch.Name, State: ch.State,
			CallState: callState4(ch.State), Answered: ch.State == "Up"})
	}
	if n := s.calls.prune(listed, before); n > 0 {
		s.log.Info("forgot calls the switch no longer has", "count", n)
	}
	return out, nil
}

// callState4 names an Asterisk channel state the way FreeSWITCH's
// callstate column does.
func callState4(state string) string {
	switch state {
	case "Up":
		return "ACTIVE"
	case "Ring", "Ringing":
		return "RINGING"
	case "Down", "Rsrvd", "OffHook", "Dialing":
		return "DOWN"
	case "Busy":
		return "HANGUP"
	}
	return strings.ToUpper(state)
}
