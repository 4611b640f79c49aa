package switchsim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

type ariKind int

const (
	ariLocal1 ariKind = iota // the ;1 half: what the app controls
	ariLocal2                // the ;2 half: runs the callee dialplan
	ariSIP                   // PJSIP/SIP channel (far end simulated)
	ariFarEnd                // the simulated far end of a SIP channel: not an Asterisk channel
	ariSnoop
)

// ariChan is one Asterisk channel as ARI shows it.
type ariChan struct {
	id, name   string
	kind       ariKind
	state      string // Down, Rsrvd, OffHook, Dialing, Ring, Ringing, Up, Busy
	callerName string
	callerNum  string
	connName   string
	connNum    string
	context    string
	exten      string
	priority   int
	appName    string
	appData    string
	created    time.Time
	order      uint64
	app        string // the application its events go to
	subscribed bool   // explicitly subscribed (originate, create): events also outside Stasis
	inStasis   bool
	vars       map[string]string
	call       *ariCall
	bridge     *ariBridge
	plays      []*ariPlayback // the first is playing, the rest queued
	recs       []*ariRecording
	snoops     []*ariChan
	snoopOf    *ariChan
	spy        bool
	hungup     bool
	timer      Timer // callee dialplan step
	dtmfTimer  Timer // DTMF the app sends
	media      ivList
	moh, echo  bool
}

func (ch *ariChan) stopTimers() {
	if ch.timer != nil {
		ch.timer.Stop()
		ch.timer = nil
	}
	if ch.dtmfTimer != nil {
		ch.dtmfTimer.Stop()
		ch.dtmfTimer = nil
	}
	for _, p := range ch.plays {
		if p.timer != nil {
			p.timer.Stop()
		}
	}
	if ch.call != nil && ch.call.timeoutTimer != nil {
		ch.call.timeoutTimer.Stop()
	}
}

const (
	ariFormOriginate = iota
	ariFormCreate
)

// ariCall is an outbound call: the Stasis side a, the callee side b.
type ariCall struct {
	form         int
	a, b         *ariChan
	sip          bool
	sc           ariScenario
	found        bool
	step         int
	app          string
	args         []string
	timeout      time.Duration
	timeoutTimer Timer
	dialed       bool
	answered     bool
	answering    bool      // b's Answer() waits for the first media frame
	answerDue    time.Time // when that wait ends
	dialstring   string
	ended        bool
}

// ivList records when something was on, for measuring media, pause and
// mute time.
type ivList struct {
	on    bool
	since time.Time
	done  [][2]time.Time
}

func (l *ivList) set(on bool, t time.Time) {
	if on == l.on {
		return
	}
	if l.on {
		l.done = append(l.done, [2]time.Time{l.since, t})
	}
	l.on, l.since = on, t
}

func (l *ivList) at(t time.Time) bool {
	if l == nil {
		return false
	}
	if l.on && !t.Before(l.since) {
		return true
	}
	for _, iv := range l.done {
		if !t.Before(iv[0]) && t.Before(iv[1]) {
			return true
		}
	}
	return false
}

func (l *ivList) bounds(out []time.Time) []time.Time {
	if l == nil {
		return out
	}
	for _, iv := range l.done {
		out = append(out, iv[0], iv[1])
	}
	if l.on {
		out = append(out, l.since)
	}
	return out
}

func (l *ivList) first() (time.Time, bool) {
	if l == nil {
		return time.Time{}, false
	}
	if len(l.done) > 0 {
		return l.done[0][0], true
	}
	if l.on {
		return l.since, true
	}
	return time.Time{}, false
}

// measure sums the time in [from, to) when include is on and no exclude
// list is.
func measure(from, to time.Time, include *ivList, exclude ...*ivList) time.Duration {
	if !to.After(from) {
		return 0
	}
	pts := []time.Time{from, to}
	pts = include.bounds(pts)
	for _, e := range exclude {
		pts = e.bounds(pts)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Before(pts[j]) })
	var total time.Duration
	for i := 0; i+1 < len(pts); i++ {
		lo, hi := pts[i], pts[i+1]
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		if !hi.After(lo) {
			continue
		}
		mid := lo.Add(hi.Sub(lo) / 2)
		if !include.at(mid) {
			continue
		}
		skip := false
		for _, e := range exclude {
			if e.at(mid) {
				skip = true
				break
			}
		}
		if !skip {
			total += hi.Sub(lo)
		}
	}
	return total
}

// ---------------------------------------------------------------- JSON and events

func (s *Sim) chanJSON(ch *ariChan) jobj {
	return jobj{{"id", ch.id}, {"name", ch.name}, {"state", ch.state}, {"protocol_id", ""},
		{"caller", jobj{{"name", ch.callerName}, {"number", ch.callerNum}}},
		{"connected", jobj{{"name", ch.connName}, {"number", ch.connNum}}},
		{"accountcode", ""},
		{"dialplan", jobj{{"context", ch.context}, {"exten", ch.exten}, {"priority", ch.priority},
			{"app_name", ch.appName}, {"app_data", ch.appData}}},
		{"creationtime", s.ariTime(ch.created)}, {"language", "en"}}
}

// chanEvent sends an event about ch to its application, if ch is
// subscribed or in Stasis. pre members come before type (Asterisk puts
// some first), post members between timestamp and channel. Caller holds
// s.mu.
func (s *Sim) chanEvent(ch *ariChan, typ string, pre jobj, post jobj) {
	if ch.kind == ariFarEnd || ch.app == "" || !(ch.subscribed || ch.inStasis) {
		return
	}
	ev := make(jobj, 0, len(pre)+len(post)+5)
	ev = append(ev, pre...)
	ev = append(ev, jkv{"type", typ}, jkv{"timestamp", s.ariTime(s.now)})
	ev = append(ev, post...)
	ev = append(ev, jkv{"channel", s.chanJSON(ch)})
	s.ariSend(ch.app, ev)
}

func (s *Sim) evStateChange(ch *ariChan, state string) {
	if ch.state == state {
		return
	}
	ch.state = state
	s.chanEvent(ch, "ChannelStateChange", nil, nil)
}

func (s *Sim) evVarset(ch *ariChan, name, value string) {
	if ch.vars == nil {
		ch.vars = map[string]string{}
	}
	ch.vars[name] = value
	s.chanEvent(ch, "ChannelVarset", jobj{{"variable", name}, {"value", value}}, nil)
}

func (s *Sim) evHangupRequest(ch *ariChan, cause int, soft bool) {
	pre := jobj{{"cause", cause}}
	if soft {
		pre = append(pre, jkv{"soft", true})
	}
	s.chanEvent(ch, "ChannelHangupRequest", pre, nil)
}

func (s *Sim) evDialplan(ch *ariChan, app, data string) {
	ch.appName, ch.appData = app, data
	s.chanEvent(ch, "ChannelDialplan", nil, jobj{{"dialplan_app", app}, {"dialplan_app_data", data}})
}

// evDial sends a Dial event about the call's Stasis channel (in "peer").
func (s *Sim) evDial(c *ariCall, status string) {
	a := c.a
	if a.app == "" || !(a.subscribed || a.inStasis) {
		return
	}
	ds := c.dialstring
	if c.form == ariFormCreate && status != "" {
		ds = ""
	}
	s.ariSend(a.app, jobj{{"type", "Dial"}, {"timestamp", s.ariTime(s.now)}, {"dialstatus", status},
		{"forward", ""}, {"dialstring", ds}, {"peer", s.chanJSON(a)}})
}

func (s *Sim) evStasisStart(ch *ariChan, args []string) {
	ch.inStasis = true
	if args == nil {
		args = []string{}
	}
	s.chanEvent(ch, "StasisStart", nil, jobj{{"args", args}})
}

func (s *Sim) evStasisEnd(ch *ariChan) {
	if !ch.inStasis {
		return
	}
	s.chanEvent(ch, "StasisEnd", nil, nil)
	ch.inStasis = false
}

func (s *Sim) evDTMF(ch *ariChan, digit string, ms int) {
	if ch.hungup {
		return
	}
	s.chanEvent(ch, "ChannelDtmfReceived", nil, jobj{{"digit", digit}, {"duration_ms", ms}})
	for _, r := range append([]*ariRecording(nil), ch.recs...) {
		if r.terminates(digit) {
			s.finishARIRecording(r, "done")
		}
	}
}

var ariCauseText = map[int]string{
	0: "Unknown", 1: "Unallocated (unassigned) number", 2: "No route to specified transmit network",
	3: "No route to destination", 5: "Misdialed trunk prefix", 6: "Channel unacceptable",
	7: "Call awarded and being delivered in an established channel", 8: "Pre-empted",
	14: "Number ported elsewhere", 16: "Normal Clearing", 17: "User busy", 18: "No user responding",
	19: "User alerting, no answer", 20: "Subscriber absent", 21: "Call Rejected", 22: "Number changed",
	23: "Redirected to new destination", 26: "Answered elsewhere", 27: "Destination out of order",
	28: "Invalid number format", 29: "Facility rejected", 30: "Response to STATus ENQuiry",
	31: "Normal, unspecified", 34: "Circuit/channel congestion", 38: "Network out of order",
	41: "Temporary failure", 42: "Switching equipment congestion", 43: "Access information discarded",
	44: "Requested channel not available", 50: "Requested facility not subscribed",
	52: "Outgoing call barred", 54: "Incoming call barred", 57: "Bearer capability not authorized",
	58: "Bearer capability not available", 65: "Bearer capability not implemented",
	66: "Channel not implemented", 69: "Facility not implemented", 81: "Invalid call reference value",
	88: "Incompatible destination", 95: "Invalid message unspecified",
	96: "Mandatory information element is missing", 97: "Message type nonexist.",
	98: "Wrong message", 99: "Info. element nonexist or not implemented",
	100: "Invalid information element contents", 101: "Message not compatible with call state",
	102: "Recovery on timer expiry", 103: "Mandatory IE length error",
	111: "Protocol error, unspecified", 127: "Interworking, unspecified",
}

func ariCauseTxt(c int) string {
	if t, ok := ariCauseText[c]; ok {
		return t
	}
	return "Unknown"
}

// ---------------------------------------------------------------- channel bookkeeping

func (s *Sim) newARIChan(kind ariKind, id, name string) *ariChan {
	s.ari.order++
	ch := &ariChan{id: id, name: name, kind: kind, created: s.now, order: s.ari.order, priority: 1,
		vars: map[string]string{}}
	if kind != ariFarEnd {
		s.ari.channels[id] = ch
		s.sessionsTotal++
	}
	return ch
}

func (s *Sim) ariChannelsSorted() []*ariChan {
	out := make([]*ariChan, 0, len(s.ari.channels))
	for _, ch := range s.ari.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

// ariDestroy ends ch: ChannelDestroyed, then it is gone. Caller holds s.mu.
func (s *Sim) ariDestroy(ch *ariChan, cause int) {
	if ch.hungup {
		return
	}
	s.ariStopMedia(ch)
	ch.hungup = true
	ch.stopTimers()
	if ch.kind == ariLocal1 && ch.call != nil && ch.call.form == ariFormOriginate {
		ch.appName, ch.appData = "AppDial2", "(Outgoing Line)"
	} else if ch.kind == ariLocal2 || (ch.kind == ariLocal1 && ch.call != nil && ch.call.form == ariFormCreate) {
		ch.appName, ch.appData = "", ""
	}
	s.chanEvent(ch, "ChannelDestroyed", nil, jobj{{"cause", cause}, {"cause_txt", ariCauseTxt(cause)}})
	ch.inStasis = false
	delete(s.ari.channels, ch.id)
	s.wake()
}

// ariStopMedia ends what runs on ch as it goes: bridge, playbacks,
// recordings, snoops. Caller holds s.mu.
func (s *Sim) ariStopMedia(ch *ariChan) {
	if ch.bridge != nil {
		s.bridgeLeave(ch.bridge, ch)
	}
	for len(ch.plays) > 0 {
		s.finishPlayback(ch.plays[0], "done")
	}
	for len(ch.recs) > 0 {
		s.finishARIRecording(ch.recs[0], "done")
	}
	for _, sn := range append([]*ariChan(nil), ch.snoops...) {
		if !sn.hungup {
			s.ariSnoopGone(sn)
		}
	}
	ch.snoops = nil
}

// ariSnoopGone ends a snoop channel whose target went away.
func (s *Sim) ariSnoopGone(sn *ariChan) {
	s.ariStopMedia(sn)
	s.evStasisEnd(sn)
	sn.hungup = true
	sn.stopTimers()
	delete(s.ari.channels, sn.id)
	s.wake()
}

// ---------------------------------------------------------------- endpoints

type ariEndpoint struct {
	tech     string // Local, PJSIP, SIP
	exten    string // Local: the extension; SIP: the number
	context  string // Local: the context
	resource string // SIP: the endpoint/trunk named in the channel name
}

// parseARIEndpoint returns the endpoint, or the HTTP status and body of
// Asterisk's refusal.
func parseARIEndpoint(ep string) (ariEndpoint, int, jobj) {
	tech, rest, ok := strings.Cut(ep, "/")
	if !ok || tech == "" || rest == "" {
		return ariEndpoint{}, http.StatusBadRequest, jobj{{"message", "Invalid endpoint specified"}}
	}
	switch strings.ToLower(tech) {
	case "local":
		rest, _, _ = strings.Cut(rest, "/") // options like /n
		exten, ctx, ok := strings.Cut(rest, "@")
		if !ok || ctx == "" {
			ctx = "default"
		}
		return ariEndpoint{tech: "Local", exten: exten, context: ctx}, 0, nil
	case "pjsip", "sip":
		t := "PJSIP"
		if strings.EqualFold(tech, "sip") {
			t = "SIP"
		}
		num, host, ok := strings.Cut(rest, "@")
		res := num
		if ok && host != "" {
			res = host
		}
		return ariEndpoint{tech: t, exten: num, resource: res, context: host}, 0, nil
	}
	return ariEndpoint{}, http.StatusInternalServerError, jobj{{"error", "Allocation failed"}}
}

func parseCallerID(v string) (name, num string) {
	v = strings.TrimSpace(v)
	if i := strings.LastIndex(v, "<"); i >= 0 && strings.HasSuffix(v, ">") {
		num = v[i+1 : len(v)-1]
		name = strings.Trim(strings.TrimSpace(v[:i]), `"`)
		return name, num
	}
	if strings.HasPrefix(v, `"`) {
		return strings.Trim(v, `"`), ""
	}
	return "", v
}

func (s *Sim) ariUniqueID() string {
	s.ari.uniqSeq++
	return fmt.Sprintf("%d.%d", s.started.Unix(), s.ari.uniqSeq)
}

// ariNewCall builds the channels of an originate or create. Caller holds
// s.mu.
func (s *Sim) ariNewCall(form int, ep ariEndpoint, id, otherID, app string, args []string) *ariCall {
	c := &ariCall{form: form, app: app, args: args}
	c.sc, c.found = ariScenarioFor(ep.exten)
	if ep.tech == "Local" {
		seq := s.ari.localSeq
		s.ari.localSeq++
		base := fmt.Sprintf("Local/%s@%s-%08x", ep.exten, ep.context, seq)
		c.dialstring = ep.exten + "@" + ep.context
		c.a = s.newARIChan(ariLocal1, id, base+";1")
		if otherID == "" {
			otherID = id + ";2"
		}
		c.b = s.newARIChan(ariLocal2, otherID, base+";2")
		c.b.state = "Ring"
		c.b.appName, c.b.appData = "", ""
		c.a.context, c.a.exten = ep.context, ep.exten
		c.b.context, c.b.exten = ep.context, ep.exten
		if ep.context != "cgtest" && !strings.HasPrefix(ep.context, "cg") {
			// Only the cgtest context (cgtest-extensions.conf) has extensions;
			// any context whose name starts with "cg" is taken as it.
			c.found = false
		}
	} else {
		c.sip = true
		s.ari.uniqSeq++
		name := fmt.Sprintf("%s/%s-%08x", ep.tech, ep.resource, s.ari.uniqSeq)
		c.dialstring = ep.exten
		if ep.context != "" {
			c.dialstring += "@" + ep.context
		}
		c.a = s.newARIChan(ariSIP, id, name)
		c.a.context, c.a.exten = "default", "s"
		c.b = s.newARIChan(ariFarEnd, otherID, "far-end")
		c.b.state = "Ring"
		if !c.found {
			// A number the far end does not know: 404, unallocated.
			c.sc, c.found = ariScenario{Steps: []ariStep{{"Hangup", "1"}}}, true
		}
	}
	c.a.state = "Down"
	c.a.call, c.b.call = c, c
	c.a.app = app
	c.a.subscribed = true
	if form == ariFormOriginate && !c.sip {
		c.b.app = app
		c.b.subscribed = true
	}
	return c
}

// ---------------------------------------------------------------- REST: channels

func (s *Sim) ariListChannels(q *ariReq, _ []string) {
	s.lock()
	out := []jobj{}
	for _, ch := range s.ariChannelsSorted() {
		out = append(out, s.chanJSON(ch))
	}
	s.unlock()
	ariReply(q.w, http.StatusOK, out)
}

func (s *Sim) ariGetChannel(q *ariReq, v []string) {
	s.lock()
	ch := s.ari.channels[v[0]]
	var body jobj
	if ch != nil {
		body = s.chanJSON(ch)
	}
	s.unlock()
	if ch == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	ariReply(q.w, http.StatusOK, body)
}

func (s *Sim) ariOriginate(q *ariReq, v []string) {
	id := q.get("channelId")
	if len(v) > 0 {
		id = v[0]
	}
	s.ariStartCall(q, ariFormOriginate, id)
}

func (s *Sim) ariCreate(q *ariReq, _ []string) {
	s.ariStartCall(q, ariFormCreate, q.get("channelId"))
}

func (s *Sim) ariStartCall(q *ariReq, form int, id string) {
	endpoint := q.get("endpoint")
	app := q.get("app")
	if endpoint == "" {
		ariMessage(q.w, http.StatusBadRequest, "Endpoint must be specified")
		return
	}
	if app == "" {
		if form == ariFormCreate {
			ariMessage(q.w, http.StatusBadRequest, "Application must be specified")
			return
		}
		if q.get("extension") == "" {
			ariMessage(q.w, http.StatusBadRequest, "Application or extension must be specified")
			return
		}
	}
	ep, status, body := parseARIEndpoint(endpoint)
	if status != 0 {
		ariReply(q.w, status, body)
		return
	}
	var args []string
	if a := q.get("appArgs"); a != "" {
		args = strings.Split(a, ",")
	}
	// Originate's timeout: seconds, -1 for none, anything else 30 s.
	timeout := 30 * time.Second
	if n := q.intParam("timeout", 30); n > 0 {
		timeout = time.Duration(n) * time.Second
	} else if n == -1 {
		timeout = 0
	}
	s.lock()
	defer s.unlock()
	s.ariInit()
	s.originated++
	if id != "" && s.ari.channels[id] != nil || q.get("otherChannelId") != "" && s.ari.channels[q.get("otherChannelId")] != nil {
		ariMessage(q.w, http.StatusConflict, "Channel with given unique ID already exists")
		return
	}
	need := 2
	if ep.tech != "Local" {
		need = 1
	}
	if len(s.channels)+s.ariSessions()+need > s.maxSessions {
		s.refusals++
		s.wake()
		ariReply(q.w, http.StatusInternalServerError, jobj{{"error", "Allocation failed"}})
		return
	}
	other := q.get("otherChannelId")
	if id == "" {
		// Asterisk's own unique ids; the ;2 half gets the next one.
		id = s.ariUniqueID()
		if other == "" && ep.tech == "Local" {
			other = s.ariUniqueID()
		}
	}
	c := s.ariNewCall(form, ep, id, other, app, args)
	if cid := q.get("callerId"); cid != "" {
		name, num := parseCallerID(cid)
		for _, ch := range []*ariChan{c.a, c.b} {
			ch.callerName, ch.callerNum, ch.connName, ch.connNum = name, num, name, num
		}
	}
	for k, val := range q.vars {
		c.a.vars[k] = val
	}
	if form == ariFormOriginate {
		c.a.appName, c.a.appData = "AppDial2", "(Outgoing Line)"
		c.timeout = timeout
		resp := s.chanJSON(c.a)
		if c.a.callerNum != "" || c.a.callerName != "" {
			s.chanEvent(c.b, "ChannelCallerId", nil, jobj{{"caller_presentation", 0},
				{"caller_presentation_txt", "Presentation Allowed, Not Screened"}})
			s.chanEvent(c.b, "ChannelConnectedLine", nil, nil)
		}
		s.queue(func() { s.ariDialStart(c) })
		ariReply(q.w, http.StatusOK, resp)
		return
	}
	// channels/create: the channel enters Stasis at once, Down.
	c.a.appName, c.a.appData = "", ""
	if c.sip {
		c.a.appName, c.a.appData = "", ""
	}
	resp := s.chanJSON(c.a)
	if c.b.kind == ariLocal2 {
		// The ;2 half exists but the app is not subscribed to it.
		c.b.app = ""
	}
	s.evDialplan(c.a, "Stasis", app)
	s.evVarset(c.a, "STASISSTATUS", "")
	s.evStasisStart(c.a, args)
	ariReply(q.w, http.StatusOK, resp)
}

func (s *Sim) ariDial(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	ch := s.ari.channels[v[0]]
	if ch == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	c := ch.call
	if c == nil || c.a != ch || c.form != ariFormCreate || c.dialed {
		ariMessage(q.w, http.StatusConflict, "Channel is not in the correct state")
		return
	}
	if !ch.inStasis {
		ariMessage(q.w, http.StatusConflict, "Channel not in Stasis application")
		return
	}
	c.timeout = time.Duration(q.intParam("timeout", 0)) * time.Second
	ariReply(q.w, http.StatusNoContent, nil)
	s.queue(func() { s.ariDialStart(c) })
}

// ariDialStart calls the callee: Dial(""), then its dialplan runs. Caller
// holds s.mu.
func (s *Sim) ariDialStart(c *ariCall) {
	if c.a.hungup || c.dialed {
		return
	}
	c.dialed = true
	if !c.found {
		// No such extension: the ;2 half fails before anything is dialled.
		if c.form == ariFormOriginate {
			s.ariDestroy(c.b, 0)
			s.ariDestroy(c.a, 0)
			return
		}
		s.ariDestroy(c.b, 0)
		s.ariAppHangupFlow(c.a, 0, false)
		return
	}
	s.evDial(c, "")
	if c.timeout > 0 {
		c.timeoutTimer = s.afterFunc(c.timeout, func() {
			c.timeoutTimer = nil
			if !c.answered && !c.ended && !c.a.hungup {
				s.ariDialTimeout(c)
			}
		})
	}
	s.ariNextStep(c)
}

// ariDialTimeout: nobody answered within the dial timeout.
func (s *Sim) ariDialTimeout(c *ariCall) {
	c.ended = true
	b := c.b
	switch {
	case c.sip:
		s.ariDestroy(b, 19)
		s.ariDestroy(c.a, 19)
	case c.form == ariFormOriginate:
		s.evHangupRequest(b, 19, false)
		b.stopTimers()
		s.ariDestroy(c.a, 19)
		s.evHangupRequest(b, 16, true)
		s.ariDestroy(b, 19)
	default:
		s.ariDestroy(b, 19)
		s.evHangupRequest(c.a, 32, true)
		s.ariLeaveStasis(c.a)
		s.ariDestroy(c.a, 19)
	}
}

// ariLeaveStasis: StasisEnd and STASISSTATUS=SUCCESS, after what runs on
// the channel stops. Caller holds s.mu.
func (s *Sim) ariLeaveStasis(ch *ariChan) {
	s.ariStopMedia(ch)
	if ch.inStasis {
		s.evStasisEnd(ch)
		s.evVarset(ch, "STASISSTATUS", "SUCCESS")
	}
}

// ariAppHangupFlow hangs up a Stasis channel from the app's side or by a
// failure of its own: ChannelHangupRequest, StasisEnd, STASISSTATUS,
// then (for a Local ;1) the ;2 half goes, then ChannelDestroyed.
func (s *Sim) ariAppHangupFlow(ch *ariChan, cause int, soft bool) {
	if ch.hungup {
		return
	}
	if soft {
		s.evHangupRequest(ch, 32, true)
	} else {
		s.evHangupRequest(ch, cause, false)
	}
	if ch.kind == ariSnoop {
		s.ariStopMedia(ch)
		s.evStasisEnd(ch)
		ch.hungup = true
		ch.stopTimers()
		delete(s.ari.channels, ch.id)
		s.wake()
		return
	}
	s.ariLeaveStasis(ch)
	c := ch.call
	if c != nil && c.a == ch && c.dialed && !c.answered && !c.ended {
		// Hung up while the callee still rings: Dial ends CANCEL.
		s.evDial(c, "CANCEL")
	}
	if c != nil {
		c.ended = true
	}
	if c != nil && c.a == ch && c.b != nil && !c.b.hungup {
		b := c.b
		b.stopTimers()
		if b.kind == ariLocal2 && b.subscribed {
			s.evHangupRequest(b, cause, false)
			s.ariDestroy(ch, cause)
			s.evHangupRequest(b, 16, true)
			s.ariDestroy(b, cause)
			return
		}
		s.ariDestroy(b, cause)
	}
	s.ariDestroy(ch, cause)
}

var ariReasons = map[string]int{
	"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18, "rejected": 21,
	"unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28, "codec_mismatch": 58,
	"interworking": 127, "failure": 38, "answered_elsewhere": 26,
}

func (s *Sim) ariHangup(q *ariReq, v []string) {
	cause := 16
	if q.has("reason_code") && q.has("reason") {
		ariMessage(q.w, http.StatusBadRequest, "The reason and reason_code can't both be specified")
		return
	}
	if rc := q.get("reason_code"); rc != "" {
		n, err := strconv.Atoi(rc)
		if err != nil {
			ariMessage(q.w, http.StatusBadRequest, "Invalid reason_code")
			return
		}
		cause = n
	} else if r := q.get("reason"); r != "" {
		n, ok := ariReasons[r]
		if !ok {
			ariMessage(q.w, http.StatusBadRequest, "Invalid reason for hangup provided")
			return
		}
		cause = n
	}
	s.lock()
	defer s.unlock()
	ch := s.ari.channels[v[0]]
	if ch == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	ariReply(q.w, http.StatusNoContent, nil)
	s.ariHangupChan(ch, cause, true)
}

// ariHangupChan hangs up any channel: soft is an app/API hangup
// (ChannelHangupRequest soft 32); otherwise the far end hung up with cause.
// Caller holds s.mu.
func (s *Sim) ariHangupChan(ch *ariChan, cause int, soft bool) {
	if ch.hungup {
		return
	}
	c := ch.call
	switch {
	case ch.kind == ariSnoop:
		s.ariAppHangupFlow(ch, cause, true)
	case ch.kind == ariLocal2:
		if soft {
			s.evHangupRequest(ch, 32, true)
		}
		s.ariCalleeHangup(c, cause)
	case !soft && c != nil:
		// The far end of the Stasis channel hangs up.
		s.ariCalleeHangup(c, cause)
	default:
		s.ariAppHangupFlow(ch, cause, soft)
	}
}

// ---------------------------------------------------------------- misc channel REST

func (s *Sim) ariStasisChan(q *ariReq, id string) *ariChan {
	ch := s.ari.channels[id]
	if ch == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return nil
	}
	if !ch.inStasis {
		ariMessage(q.w, http.StatusConflict, "Channel not in Stasis application")
		return nil
	}
	return ch
}

func (s *Sim) ariAnswer(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	ch := s.ariStasisChan(q, v[0])
	if ch == nil {
		return
	}
	ariReply(q.w, http.StatusNoContent, nil)
	if ch.state != "Up" {
		s.evStateChange(ch, "Up")
	}
}

func (s *Sim) ariGetVar(q *ariReq, v []string) {
	name := q.get("variable")
	if name == "" {
		ariMessage(q.w, http.StatusBadRequest, "Variable name is required")
		return
	}
	s.lock()
	ch := s.ari.channels[v[0]]
	if ch == nil {
		s.unlock()
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	val, ok := ch.vars[name]
	switch name {
	case "CHANNEL(state)":
		val, ok = ch.state, true
	case "CHANNEL(name)":
		val, ok = ch.name, true
	case "CHANNEL(uniqueid)", "UNIQUEID":
		val, ok = ch.id, true
	case "CALLERID(num)":
		val, ok = ch.callerNum, true
	case "CALLERID(name)":
		val, ok = ch.callerName, true
	case "CONTEXT":
		val, ok = ch.context, true
	case "EXTEN":
		val, ok = ch.exten, true
	}
	s.unlock()
	if !ok {
		ariMessage(q.w, http.StatusNotFound, "Provided variable was not found")
		return
	}
	ariReply(q.w, http.StatusOK, jobj{{"value", val}})
}

func (s *Sim) ariSetVar(q *ariReq, v []string) {
	name := q.get("variable")
	if name == "" {
		ariMessage(q.w, http.StatusBadRequest, "Variable name is required")
		return
	}
	s.lock()
	defer s.unlock()
	ch := s.ari.channels[v[0]]
	if ch == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	ariReply(q.w, http.StatusNoContent, nil)
	s.evVarset(ch, name, q.get("value"))
}

// ---------------------------------------------------------------- hooks for the Sim-wide API

func (ch *ariChan) info() ChannelInfo {
	vars := make(map[string]string, len(ch.vars))
	for k, v := range ch.vars {
		vars[k] = v
	}
	dir := "outbound"
	if ch.kind == ariLocal2 {
		dir = "inbound"
	}
	cs := "DOWN"
	switch ch.state {
	case "Ringing", "Ring":
		cs = "RINGING"
	case "Up":
		cs = "ACTIVE"
	}
	foreign := ch.kind == ariSIP && ch.call == nil
	if foreign {
		dir = "inbound"
	}
	return ChannelInfo{UUID: ch.id, Name: ch.name, Direction: dir, State: ch.state, CallState: cs,
		Answered: ch.state == "Up", Dest: ch.exten, Foreign: foreign, Created: ch.created, Vars: vars, order: ch.order}
}

// ariSessions is how many sessions ARI channels use (MaxSessions counts
// ESL and ARI channels alike). Caller holds s.mu.
func (s *Sim) ariSessions() int {
	if s.ari == nil {
		return 0
	}
	return len(s.ari.channels)
}

// ariHangupFault ends an ARI channel as if its far end hung up with cause
// (HangupChannel). Caller holds s.mu.
func (s *Sim) ariHangupFault(id, cause string) bool {
	if s.ari == nil {
		return false
	}
	ch := s.ari.channels[id]
	if ch == nil {
		return false
	}
	code, ok := causeCodes[parseCause(cause)]
	if !ok || code > 127 {
		code = 16
	}
	if ch.kind == ariSnoop {
		s.ariAppHangupFlow(ch, code, true)
		return true
	}
	s.ariHangupChan(ch, code, false)
	return true
}

// StartARIInboundChannel simulates an inbound SIP call from number that
// the dialplan sends straight into Stasis(Config.ARIApp): the app gets a
// StasisStart for a PJSIP channel in state Ring that it did not
// originate (it lives until hung up through ARI or HangupChannel). If no
// events WebSocket is connected for the app, Stasis() fails and the
// channel is gone at once. Returns the channel id.
func (s *Sim) StartARIInboundChannel(number string) string {
	s.lock()
	defer s.unlock()
	s.ariInit()
	id := s.ariUniqueID()
	s.ari.uniqSeq++
	ch := s.newARIChan(ariSIP, id, fmt.Sprintf("PJSIP/external-%08x", s.ari.uniqSeq))
	ch.state = "Ring"
	ch.callerNum, ch.connNum = number, ""
	ch.context, ch.exten, ch.priority = "from-external", "callgate", 1
	ch.appName, ch.appData = "Stasis", s.cfg.ARIApp
	ch.app = s.cfg.ARIApp
	if !s.ariAppActive(ch.app) {
		ch.hungup = true
		delete(s.ari.channels, id)
		s.wake()
		return id
	}
	s.evStasisStart(ch, nil)
	return id
}
