package switchsim

import (
	"strings"
	"time"
)

// bridge is one run of the bridge application (mod_dptools
// audio_bridge_function): the channel running it, the outbound call it
// placed (switch_ivr_originate) and how far it got.
type bridge struct {
	caller  *channel
	run     *appRun
	call    *call // the outbound call; call.a is the leg bridged to caller
	bridged bool  // the callee answered and CHANNEL_BRIDGE went out
	done    bool  // the application has ended or is ending
}

// legSnapshot is a copy of another channel's caller profile, reported as
// the Other-Leg-* block (switch_caller_profile_clone).
type legSnapshot struct {
	direction                                  string
	uuid, name                                 string
	prof                                       profile
	created, answered, progress, progressMedia time.Time
}

// addOtherLeg appends the Other-Leg-* block like
// switch_caller_profile_event_set_data with the "Other-Leg" prefix. A
// cloned profile has no Profile-Index (capture 19).
func addOtherLeg(e *event, o *legSnapshot) {
	p := &o.prof
	opt := func(name, v string) {
		if v != "" {
			e.add(name, v)
		}
	}
	e.add("Other-Leg-Direction", o.direction)
	e.add("Other-Leg-Logical-Direction", o.direction)
	opt("Other-Leg-Dialplan", p.dialplan)
	opt("Other-Leg-Caller-ID-Name", p.cidName)
	opt("Other-Leg-Caller-ID-Number", p.cidNumber)
	opt("Other-Leg-Orig-Caller-ID-Name", p.origCidName)
	opt("Other-Leg-Orig-Caller-ID-Number", p.origCidNumber)
	opt("Other-Leg-Callee-ID-Name", p.calleeName)
	opt("Other-Leg-Callee-ID-Number", p.calleeNumber)
	opt("Other-Leg-Network-Addr", p.networkAddr)
	opt("Other-Leg-ANI", p.ani)
	opt("Other-Leg-Destination-Number", p.dest)
	e.add("Other-Leg-Unique-ID", o.uuid)
	opt("Other-Leg-Source", p.source)
	opt("Other-Leg-Context", p.context)
	e.add("Other-Leg-Channel-Name", o.name)
	created := uepoch(o.created)
	e.add("Other-Leg-Profile-Created-Time", created)
	e.add("Other-Leg-Channel-Created-Time", created)
	e.add("Other-Leg-Channel-Answered-Time", uepoch(o.answered))
	e.add("Other-Leg-Channel-Progress-Time", uepoch(o.progress))
	e.add("Other-Leg-Channel-Progress-Media-Time", uepoch(o.progressMedia))
	for _, name := range []string{"Hangup-Time", "Transfer-Time", "Resurrect-Time", "Bridged-Time",
		"Last-Hold", "Hold-Accum"} {
		e.add("Other-Leg-Channel-"+name, "0")
	}
	e.add("Other-Leg-Screen-Bit", "true")
	e.add("Other-Leg-Privacy-Hide-Name", "false")
	e.add("Other-Leg-Privacy-Hide-Number", "false")
}

// emitBridgeEvent emits CHANNEL_BRIDGE or CHANNEL_UNBRIDGE on the bridging
// channel: the Bridge-A/B-Unique-ID headers come before the channel data.
func (s *Sim) emitBridgeEvent(ch *channel, name, peerUUID string) {
	e := s.newEvent(name)
	e.add("Bridge-A-Unique-ID", ch.uuid)
	e.add("Bridge-B-Unique-ID", peerUUID)
	s.addChannelData(e, ch, name)
	s.emit(e)
}

// startBridge starts the bridge application on ch: it parses the dial
// string like originate does, places the outbound call and reports whether
// the application now waits (false: it failed at once and completes).
// Caller holds s.mu.
func (s *Sim) startBridge(ch *channel, run *appRun) bool {
	if strings.TrimSpace(run.data) == "" {
		return false // mod_dptools: "No data specified", no variables
	}
	v := &ch.vars
	v.set("originate_disposition", "failure")
	v.set("DIALSTATUS", "INVALIDARGS")
	vars, endpoint, ok := splitDialString(run.data)
	if !ok {
		s.setBridgeFailure(ch, nil, "INVALID_URL")
		return false
	}
	// Only the first of several endpoints (",", "|" or ":_:") is dialled.
	if i := strings.IndexAny(endpoint, ",|"); i >= 0 {
		endpoint = endpoint[:i]
	}
	endpoint, _, _ = strings.Cut(endpoint, ":_:")
	o := Originate{Vars: vars, Endpoint: strings.TrimSpace(endpoint)}
	sp, fail := planOriginate(o)
	if fail != "" {
		s.setBridgeFailure(ch, nil, strings.TrimSuffix(strings.TrimPrefix(fail, "-ERR "), "\n"))
		return false
	}
	// audio_bridge_function reads call_timeout from the channel; the dial
	// string's {originate_timeout}/{call_timeout}/[leg_timeout] win. The
	// channel's own originate_timeout (left over from callgate's originate)
	// is not exported to the new leg and so does not count.
	secs := 60
	if t := leadingInt(ch.vars.get("call_timeout")); t > 0 {
		secs = t
	}
	for _, name := range []string{"call_timeout", "originate_timeout", "leg_timeout"} {
		if t := leadingInt(o.variable(name)); t > 0 {
			secs = t
		}
	}
	sp.timeout = time.Duration(secs) * time.Second
	// The new leg's caller profile is a clone of the caller's (capture 19):
	// effective_caller_id_* or the caller's own caller ID, unless the dial
	// string sets origination_caller_id_*.
	cp := &ch.prof
	sp.cidName = firstNonEmpty(o.variable("origination_caller_id_name"), ch.vars.get("effective_caller_id_name"), cp.cidName)
	sp.cidNum = firstNonEmpty(o.variable("origination_caller_id_number"), ch.vars.get("effective_caller_id_number"),
		cp.cidNumber, "0000000000")
	sp.origCidName = firstNonEmpty(cp.cidName, sp.cidName)
	sp.origCidNum = firstNonEmpty(cp.cidNumber, sp.cidNum)
	sp.ani = firstNonEmpty(cp.ani, sp.cidNum)
	if !s.admit(sp) {
		// The session limit refuses the outgoing channel like it refuses an
		// originate (capture 16).
		s.setBridgeFailure(ch, nil, "DESTINATION_OUT_OF_ORDER")
		return false
	}
	br := &bridge{caller: ch, run: run}
	c := &call{br: br}
	br.call = c
	run.br = br
	ch.bridging = br
	s.launchCall(c, sp)
	v.set("originate_signal_bond", c.a.uuid)
	v.set("originated_legs", c.a.uuid+";Outbound Call;"+sp.calleeNum)
	return true
}

// bridgePeerProfile makes the bridge's outbound leg a clone of the
// caller's profile and reports the caller as Other-Type originator, with
// the zero times capture 19 shows.
func (s *Sim) bridgePeerProfile(br *bridge, peer *channel) {
	caller := br.caller
	cp := caller.prof
	peer.prof.dialplan, peer.prof.source = cp.dialplan, cp.source
	peer.prof.context, peer.prof.networkAddr = cp.context, cp.networkAddr
	peer.otherType = "originator"
	peer.other = &legSnapshot{direction: caller.direction, uuid: caller.uuid, name: caller.name, prof: cp}
}

// bridgeAnswered bridges the caller to the leg that answered.
func (s *Sim) bridgeAnswered(c *call) {
	br, peer := c.br, c.a
	caller := br.caller
	if c.reported || peer.hungup || br.done || caller.hungup {
		return
	}
	c.reported = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	br.bridged = true
	peer.vars.set("endpoint_disposition", "ANSWER")
	if caller.answered.IsZero() {
		s.markAnswered(caller)
		caller.vars.set("endpoint_disposition", "ANSWER")
	}
	// switch_ivr_originate's result, then the callee ID and the originatee
	// profile for the caller.
	v := &caller.vars
	v.set("originate_disposition", "SUCCESS")
	v.set("DIALSTATUS", "SUCCESS")
	v.set("originate_causes", peer.uuid+";NONE")
	caller.prof.calleeName, caller.prof.calleeNumber = peer.prof.calleeName, peer.prof.calleeNumber
	caller.otherType = "originatee"
	caller.other = &legSnapshot{direction: peer.direction, uuid: peer.uuid, name: peer.name, prof: peer.prof,
		created: peer.created, answered: peer.answered, progress: peer.progress, progressMedia: peer.progressMedia}
	// switch_ivr_multi_threaded_bridge.
	caller.bridgedAt, peer.bridgedAt = s.now, s.now
	peer.setState("CS_EXCHANGE_MEDIA", 5)
	s.emitBridgeEvent(caller, "CHANNEL_BRIDGE", peer.uuid)
	for _, x := range []struct{ ch, other *channel }{{caller, peer}, {peer, caller}} {
		x.ch.vars.set("bridge_to", x.other.uuid)
		x.ch.vars.set("last_bridge_to", x.other.uuid)
	}
	for _, x := range []struct{ ch, other *channel }{{caller, peer}, {peer, caller}} {
		x.ch.vars.set("bridge_channel", x.other.name)
		x.ch.vars.set("bridge_uuid", x.other.uuid)
		x.ch.vars.set("signal_bond", x.other.uuid)
	}
}

// bridgePeerGone ends an established bridge once the other leg has hung
// up: CHANNEL_UNBRIDGE, then the application completes and the caller
// carries on (or hangs up too with hangup_after_bridge=true).
func (s *Sim) bridgePeerGone(br *bridge) {
	if !br.bridged || br.done || br.caller.hungup {
		return
	}
	br.done = true
	caller, peer := br.caller, br.call.a
	caller.bridging = nil
	s.unbridge(caller, peer)
	if switchTrue(caller.vars.get("hangup_after_bridge")) {
		s.hangupChannel(caller, peer.hangupCause, false) // completes the application
		return
	}
	s.finish(caller, br.run)
}

func (s *Sim) unbridge(caller, peer *channel) {
	caller.vars.unset("bridge_to")
	caller.vars.set("bridge_hangup_cause", firstNonEmpty(peer.hangupCause, "NORMAL_CLEARING"))
	s.emitBridgeEvent(caller, "CHANNEL_UNBRIDGE", peer.uuid)
}

// bridgeFailed records an outbound call that ended before it was
// answered and, unless the caller is going away, completes the bridge.
func (s *Sim) bridgeFailed(br *bridge, cause string) {
	caller := br.caller
	s.setBridgeFailure(caller, br.call.a, cause)
	if br.done {
		return // the caller hung up: finishApps completes the application
	}
	br.done = true
	caller.bridging = nil
	s.queue(func() {
		if !caller.hungup && caller.runs(br.run) {
			s.finish(caller, br.run)
		}
	})
}

// bridgeAbort ends the bridge of a caller that is hanging up: the other
// leg is cancelled (ORIGINATOR_CANCEL) or, once bridged, hung up
// (NORMAL_CLEARING). finishApps completes the application afterwards.
func (s *Sim) bridgeAbort(br *bridge) {
	if br.done {
		return
	}
	br.done = true
	caller := br.caller
	caller.bridging = nil
	c := br.call
	if c == nil {
		return
	}
	peer := c.a
	if br.bridged {
		if !peer.hungup {
			s.hangupChannel(peer, "NORMAL_CLEARING", false)
		}
		s.unbridge(caller, peer)
		return
	}
	if !peer.hungup {
		s.hangupChannel(peer, "ORIGINATOR_CANCEL", false) // reports the failure
	}
	if !c.reported {
		s.reportOriginate(c, "-ERR "+firstNonEmpty(peer.hangupCause, "ORIGINATOR_CANCEL")+"\n")
	}
}

// setBridgeFailure sets what switch_ivr_originate leaves on the caller
// when it fails (capture 19), in its order.
func (s *Sim) setBridgeFailure(ch *channel, peer *channel, cause string) {
	v := &ch.vars
	v.set("originate_disposition", cause)
	v.set("DIALSTATUS", dialStatus(cause))
	if peer != nil {
		v.set("originate_causes", peer.uuid+";"+cause)
	}
	v.set("originate_failed_cause", cause)
}

// dialStatus is switch_ivr_originate's DIALSTATUS for a failure cause.
func dialStatus(cause string) string {
	switch cause {
	case "ORIGINATOR_CANCEL":
		return "CANCEL"
	case "USER_BUSY":
		return "BUSY"
	case "NO_ANSWER":
		return "NOANSWER"
	case "DESTINATION_OUT_OF_ORDER", "INVALID_PROFILE":
		return "INVALIDARGS"
	case "CALL_REJECTED":
		return "DONTCALL"
	}
	return cause
}

// tellBridgePartner sets last_bridge_hangup_cause (and the protocol
// cause) on the other party of a bridge when ch hangs up, while that party
// is still up (switch_channel_set_variable_partner; capture 19 shows it on
// the outbound leg when the caller went first).
func (s *Sim) tellBridgePartner(ch *channel, cause string) {
	var p *channel
	switch {
	case ch.bridging != nil && !ch.bridging.done && ch.bridging.call != nil:
		p = ch.bridging.call.a
	case ch.call != nil && ch.call.br != nil && ch.call.a == ch && !ch.call.br.done:
		p = ch.call.br.caller
	}
	if p == nil || p.hungup {
		return
	}
	p.vars.set("last_bridge_hangup_cause", cause)
	if proto := ch.vars.get("proto_specific_hangup_cause"); proto != "" {
		p.vars.set("last_bridge_proto_specific_hangup_cause", proto)
	}
}

// runs reports whether run is one of ch's running applications.
func (ch *channel) runs(run *appRun) bool {
	for _, r := range ch.apps {
		if r == run {
			return true
		}
	}
	return false
}

// switchTrue is switch_true.
func switchTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	return leadingInt(v) != 0
}
