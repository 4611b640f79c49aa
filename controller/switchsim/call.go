package switchsim

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// call is one originate: the a-leg callgate controls and the callee behind
// it (the loopback b-leg, or the invisible far end of a SIP call).
type call struct {
	a, b     *channel
	job      *job    // the originate job; nil for a bridge's outbound call
	br       *bridge // the bridge that placed this call, or nil
	app      string  // run on the a-leg once answered (&park())
	appData  string
	answered bool
	reported bool // the originate result went out
	timer    Timer
}

// newChannel creates a channel and, unless it is a SIP far end, registers
// it as a session. Caller holds s.mu.
func (s *Sim) newChannel(kind legKind, uuid, name string) *channel {
	s.order++
	ch := &channel{uuid: uuid, name: name, kind: kind, order: s.order, created: s.now,
		callState: "DOWN", answerState: "ringing"}
	if kind != legRemote {
		s.sessionsTotal++
		ch.sessionID = s.sessionsTotal
		s.channels[uuid] = ch
		s.peak.observe(s.now, len(s.channels))
	}
	return ch
}

// startCall creates the channels of an admitted originate and starts the
// callee's behaviour. Caller holds s.mu.
func (s *Sim) startCall(sp *originateSpec) {
	if !s.admit(sp) {
		s.finishJob(sp.job, "-ERR DESTINATION_OUT_OF_ORDER\n")
		return
	}
	c := &call{job: sp.job, app: sp.o.App, appData: sp.o.AppData}
	if c.app == "" {
		c.app = "park" // an extension: the callgate context parks it
	}
	s.launchCall(c, sp)
}

// admit checks the session limit and the UUID for a new call; a refusal is
// counted. Caller holds s.mu.
func (s *Sim) admit(sp *originateSpec) bool {
	if s.channels[sp.uuid] != nil || len(s.channels)+s.ariSessions()+sp.sessions() > s.maxSessions {
		s.refusals++
		s.wake()
		return false
	}
	return true
}

// launchCall arms the ring timeout and creates the channels of an admitted
// call. Caller holds s.mu.
func (s *Sim) launchCall(c *call, sp *originateSpec) {
	sc := ScenarioFor(sp.number)
	if sc.Suffix == "" && s.cfg.Callees != nil {
		sc = s.drawCallee()
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("switchsim: originate", "uuid", sp.uuid, "number", maskNumber(sp.number), "scenario", sc.Name)
	}
	// Like switch_ivr_originate, the ring timeout counts whole seconds of the
	// clock: it expires when the second the originate started in plus the
	// timeout is reached. It is armed before the callee starts so that it
	// wins a tie with the callee's own timers.
	deadline := time.Unix(s.now.Unix(), 0).Add(sp.timeout)
	c.timer = s.afterFunc(deadline.Sub(s.now), func() {
		c.timer = nil
		if !c.answered && !c.a.hungup {
			s.hangupChannel(c.a, "NO_ANSWER", false)
		}
	})
	if sp.kind == legLoopbackA {
		s.startLoopback(c, sp, sc)
	} else {
		s.startSofia(c, sp, sc)
	}
}

func maskNumber(n string) string {
	if len(n) <= 4 {
		return "****"
	}
	return "****" + n[len(n)-4:]
}

func (s *Sim) startLoopback(c *call, sp *originateSpec, sc Scenario) {
	a := s.newChannel(legLoopbackA, sp.uuid, sp.chanName)
	b := s.newChannel(legLoopbackB, newUUID(), "loopback/"+sp.number+"-b")
	c.a, c.b = a, b
	a.call, b.call, a.peer, b.peer = c, c, b, a
	prof := profile{dialplan: "xml", cidName: sp.cidName, cidNumber: sp.cidNum, origCidName: sp.origCidName,
		origCidNumber: sp.origCidNum, calleeName: "Outbound Call", calleeNumber: sp.calleeNum, ani: sp.ani,
		dest: sp.number, source: "mod_loopback", context: sp.context}
	for _, ch := range []*channel{a, b} {
		ch.number, ch.prof, ch.callUUID = sp.number, prof, ch.uuid
		ch.codecName, ch.codecRate, ch.codecBits = "L16", "8000", "128000"
	}
	a.direction, b.direction = "outbound", "inbound"
	if c.br != nil {
		s.bridgePeerProfile(c.br, a)
	}

	a.setState("CS_NONE", 1)
	s.emitChannel(a, "CHANNEL_OUTGOING")
	if c.br != nil {
		a.callUUID = c.br.caller.uuid
	}
	a.setState("CS_INIT", 2)
	v := &a.vars
	v.set("direction", "outbound")
	v.set("is_outbound", "true")
	v.set("session_id", strconv.Itoa(a.sessionID))
	setCodecVars(v, "L16", "8000")
	v.set("channel_name", a.name)
	v.set("uuid", a.uuid)
	if c.br != nil {
		v.set("originator", c.br.caller.uuid)
		v.set("signal_bond", c.br.caller.uuid)
	}
	v.set("call_uuid", a.callUUID)
	setOriginateVars(v, sp.o.Vars)
	v.set("originate_early_media", "true")
	if c.br != nil {
		v.set("originating_leg_uuid", c.br.caller.uuid)
	}
	v.set("originate_endpoint", "loopback")
	v.set("other_loopback_leg_uuid", b.uuid)
	v.set("loopback_leg", "A")
	s.emitChannel(a, "CHANNEL_CREATE")
	s.emitChannel(a, "CHANNEL_ORIGINATE")
	a.setState("CS_CONSUME_MEDIA", 7)

	b.setState("CS_INIT", 2)
	b.hitDialplan = true
	v = &b.vars
	v.set("direction", "inbound")
	v.set("uuid", b.uuid)
	v.set("call_uuid", b.uuid)
	v.set("session_id", strconv.Itoa(b.sessionID))
	v.set("channel_name", b.name)
	setCodecVars(v, "L16", "8000")
	setOriginateVars(v, sp.o.Vars)
	v.set("other_loopback_leg_uuid", a.uuid)
	v.set("loopback_leg", "B")
	s.emitChannel(b, "CHANNEL_CREATE")
	b.script = sc.Steps
	s.startScript(b)
}

func (s *Sim) startSofia(c *call, sp *originateSpec, sc Scenario) {
	a := s.newChannel(legSofia, sp.uuid, sp.chanName)
	far := s.newChannel(legRemote, newUUID(), "")
	c.a, c.b = a, far
	a.call, far.call, a.peer, far.peer = c, c, far, a
	a.number, far.number = sp.number, sp.number
	a.direction, a.callUUID = "outbound", a.uuid
	a.sipProfile, a.sipHost, a.gateway = sp.sipProf, sp.sipHost, sp.gateway
	a.prof = profile{cidName: sp.cidName, cidNumber: sp.cidNum, origCidName: sp.origCidName,
		origCidNumber: sp.origCidNum, calleeName: "Outbound Call", calleeNumber: sp.calleeNum, ani: sp.ani,
		dest: sp.number, source: "src/switch_ivr_originate.c", context: "default"}
	if c.br != nil {
		s.bridgePeerProfile(c.br, a)
	}

	a.setState("CS_NONE", 1)
	s.emitChannel(a, "CHANNEL_OUTGOING")
	if c.br != nil {
		a.callUUID = c.br.caller.uuid
	}
	a.setState("CS_INIT", 2)
	v := &a.vars
	v.set("direction", "outbound")
	v.set("is_outbound", "true")
	v.set("uuid", a.uuid)
	v.set("call_uuid", a.uuid)
	v.set("session_id", strconv.Itoa(a.sessionID))
	if sp.gateway != "" {
		v.set("sip_gateway_name", sp.gateway)
		v.set("sip_invite_domain", sp.gateway)
	}
	v.set("sip_local_network_addr", "127.0.0.1")
	v.set("sip_profile_name", map[bool]string{true: "gateway", false: sp.sipProf}[sp.gateway != ""])
	v.set("text_media_flow", "disabled")
	v.set("channel_name", a.name)
	v.set("sip_destination_url", "sip:"+sp.number+"@"+sp.sipHost)
	if c.br != nil { // as in capture 19 (a dialplan bridge to a gateway)
		v.set("originator", c.br.caller.uuid)
		v.set("signal_bond", c.br.caller.uuid)
		v.set("call_uuid", c.br.caller.uuid)
	}
	setOriginateVars(v, sp.o.Vars)
	v.set("originate_early_media", "true")
	if c.br != nil {
		v.set("originating_leg_uuid", c.br.caller.uuid)
	}
	v.set("originate_endpoint", "sofia")
	v.set("rtp_use_codec_string", "PCMU,PCMA")
	v.set("local_media_ip", "127.0.0.1")
	v.set("local_media_port", "24000")
	v.set("advertised_media_ip", "127.0.0.1")
	v.set("audio_media_flow", "sendrecv")
	v.set("sip_outgoing_contact_uri", "<sip:mod_sofia@127.0.0.1:5080>")
	v.set("sip_req_uri", sp.number+"@"+sp.sipHost)
	v.set("sip_to_host", sp.sipHost)
	v.set("sip_from_host", sp.sipHost)
	v.set("sofia_profile_name", sp.sipProf)
	v.set("recovery_profile_name", sp.sipProf)
	v.set("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5080")
	if sp.sipProf == "external-tls" {
		v.set("rtp_secure_media", "mandatory:AES_CM_128_HMAC_SHA1_80")
	}
	s.emitChannel(a, "CHANNEL_CREATE")
	s.emitChannel(a, "CHANNEL_ORIGINATE")
	a.setState("CS_CONSUME_MEDIA", 7)
	far.script = sc.Steps
	s.startScript(far)
}

func setCodecVars(v *varList, codec, rate string) {
	v.set("read_codec", codec)
	v.set("read_rate", rate)
	v.set("write_codec", codec)
	v.set("write_rate", rate)
}

func setOriginateVars(v *varList, vars []Var) {
	for _, x := range vars {
		v.set(x.Name, x.Value)
	}
}

// startScript starts the dialplan a callee or inbound leg runs.
func (s *Sim) startScript(ch *channel) {
	ch.setState("CS_EXECUTE", 4)
	ch.callState = "RINGING"
	ch.vars.set("call_uuid", ch.uuid)
	s.runScript(ch)
}

// runScript executes dialplan steps until one has to wait or the channel
// hangs up; when the dialplan runs out the channel hangs up, as FreeSWITCH
// does.
func (s *Sim) runScript(ch *channel) {
	for !ch.hungup {
		if ch.pc >= len(ch.script) {
			s.hangupChannel(ch, "NORMAL_CLEARING", false)
			return
		}
		st := ch.script[ch.pc]
		ch.pc++
		if !s.execute(ch, &appRun{name: st.App, data: st.Data, uuid: newUUID(), origin: originScript}) {
			return
		}
	}
}

// calleeAnswered marks the originating leg answered when its callee
// answers. Caller holds s.mu.
func (s *Sim) calleeAnswered(callee *channel) {
	c := callee.call
	if c == nil || c.answered || c.a.hungup {
		return
	}
	a := c.a
	c.answered = true
	if a.isSIP() {
		setSIPAnswerVariables(a, newUUID())
	}
	s.markAnswered(a)
	s.queue(func() { s.originateAnswered(c) })
}

func (s *Sim) markAnswered(ch *channel) {
	if !ch.answered.IsZero() {
		return
	}
	ch.answered = s.now
	ch.answerState = "answered"
	s.emitChannel(ch, "CHANNEL_ANSWER")
	ch.callState = "ACTIVE"
}

// calleeRinging marks the originating leg as ringing (SIP 180).
func (s *Sim) calleeRinging(callee *channel) {
	c := callee.call
	if c == nil || c.answered || c.a.hungup || !c.a.progress.IsZero() {
		return
	}
	c.a.progress = s.now
	s.emitChannel(c.a, "CHANNEL_PROGRESS")
	c.a.callState = "RINGING"
}

// originateAnswered completes an originate: the a-leg flips caller and
// callee, the result goes out, and the a-leg runs its application.
func (s *Sim) originateAnswered(c *call) {
	if c.br != nil {
		s.bridgeAnswered(c)
		return
	}
	a := c.a
	if c.reported || a.hungup {
		return
	}
	a.vars.set("endpoint_disposition", "ANSWER")
	a.vars.set("pre_transfer_caller_id_number", a.prof.cidNumber)
	a.prof.flip()
	a.vars.set("channel_cid_flipped", "yes")
	a.vars.set("call_uuid", a.uuid)
	a.hitDialplan = true
	a.setState("CS_EXECUTE", 4)
	s.reportOriginate(c, "+OK "+a.uuid+"\n")
	if s.execute(a, &appRun{name: c.app, data: c.appData, uuid: newUUID(), origin: originInline}) {
		s.hangupChannel(a, "NORMAL_CLEARING", false)
		return
	}
	s.runPending(a)
}

func (s *Sim) reportOriginate(c *call, body string) {
	if c.reported {
		return
	}
	c.reported = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.br != nil {
		s.bridgeFailed(c.br, strings.TrimSuffix(strings.TrimPrefix(body, "-ERR "), "\n"))
		return
	}
	s.finishJob(c.job, body)
}

// hangupChannel ends ch with cause: CHANNEL_HANGUP, the end of whatever it
// was running, then (a moment later) the other leg, CHANNEL_HANGUP_COMPLETE
// and CHANNEL_DESTROY. propagated is true when the other leg's hangup
// caused this one. Caller holds s.mu.
func (s *Sim) hangupChannel(ch *channel, cause string, propagated bool) {
	if ch.hungup || ch.destroyed {
		return
	}
	ch.hungup = true
	ch.hangupCause = cause
	ch.hungupAt = s.now
	ch.stopTimer()
	ch.pending = nil
	if ch.kind == legRemote {
		if p := ch.peer; p != nil && !p.hungup && !propagated {
			s.queue(func() { s.hangupChannel(p, cause, true) })
		}
		return
	}
	if ch.isSIP() && !propagated {
		ch.hangupBySwitch = true
	}
	ch.answerState = "hangup"
	ch.stateNum = 10
	if ch.isSIP() && !ch.hangupBySwitch {
		setSIPHangupVariables(ch)
	}
	s.tellBridgePartner(ch, cause)
	s.emitChannel(ch, "CHANNEL_HANGUP")
	c := ch.call
	if c != nil && c.a == ch && !c.reported && !propagated {
		s.reportOriginate(c, "-ERR "+cause+"\n")
	}
	s.finishApps(ch)
	s.stopAllRecordings(ch)
	if p := ch.peer; p != nil && !p.hungup {
		s.queue(func() { s.hangupChannel(p, cause, true) })
	}
	s.queue(func() { s.reportHangup(ch) })
	if c != nil && c.br != nil && c.a == ch {
		br := c.br
		s.queue(func() { s.bridgePeerGone(br) })
	}
}

func (s *Sim) reportHangup(ch *channel) {
	ch.showHangupTime = true
	setCDRVariables(ch)
	ch.setState("CS_REPORTING", 11)
	ch.callState = "HANGUP"
	s.emitChannel(ch, "CHANNEL_HANGUP_COMPLETE")
	s.queue(func() { s.destroy(ch) })
}

func (s *Sim) destroy(ch *channel) {
	ch.stateNum = 12
	if c := ch.call; c != nil && c.a == ch && !c.reported {
		s.reportOriginate(c, "-ERR "+ch.hangupCause+"\n")
	}
	s.emitChannel(ch, "CHANNEL_DESTROY")
	ch.destroyed = true
	delete(s.channels, ch.uuid)
	s.wake()
}

// deliverDTMF queues digits the far side sent; a running
// play_and_get_digits consumes them at once, otherwise they wait for one.
func (s *Sim) deliverDTMF(ch *channel, digits string) {
	if ch == nil || ch.hungup {
		return
	}
	ch.dtmfQueue = append(ch.dtmfQueue, digits...)
	if top := ch.top(); top != nil && top.pg != nil {
		s.pagdDigits(ch, top)
	}
}

// recording is one uuid_record / record_session on a channel.
type recording struct {
	path    string
	start   time.Time
	masked  time.Duration
	maskAt  time.Time
	masking bool
}

func (s *Sim) startRecording(ch *channel, path string) {
	ch.recordings = append(ch.recordings, &recording{path: path, start: s.now})
	s.emitChannel(ch, "RECORD_START", "Record-File-Path", path)
}

func (s *Sim) findRecording(ch *channel, path string) *recording {
	for _, r := range ch.recordings {
		if r.path == path {
			return r
		}
	}
	return nil
}

// stopRecording ends the recordings at path ("all" for every one) and
// reports whether there was one.
func (s *Sim) stopRecording(ch *channel, path string) bool {
	found := false
	kept := ch.recordings[:0]
	for _, r := range ch.recordings {
		if path != "all" && r.path != path {
			kept = append(kept, r)
			continue
		}
		found = true
		s.finishRecording(ch, r)
	}
	ch.recordings = kept
	return found
}

func (s *Sim) stopAllRecordings(ch *channel) {
	if len(ch.recordings) > 0 {
		s.stopRecording(ch, "all")
	}
}

func (s *Sim) finishRecording(ch *channel, r *recording) {
	if r.masking {
		r.masked += s.now.Sub(r.maskAt)
	}
	ms := (s.now.Sub(r.start) - r.masked).Milliseconds()
	if ms < 0 {
		ms = 0
	}
	samples := ms * 8
	width := int64(2)
	if v := ch.vars.get("RECORD_STEREO"); v == "true" {
		width = 4
	}
	ch.vars.set("record_file_size", i64(44+samples*width))
	ch.vars.set("record_samples", i64(samples))
	ch.vars.set("record_seconds", i64(ms/1000))
	ch.vars.set("record_ms", i64(ms))
	ch.vars.set("record_completion_cause", "success-maxtime")
	s.writeRecording(ch, r.path, ms)
	s.emitChannel(ch, "RECORD_STOP", "Record-File-Path", r.path, "Record-Completion-Cause", "success-maxtime")
}
