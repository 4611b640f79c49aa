package switchsim

import (
	"regexp"
	"strconv"
	"strings"
)

// header is one event header; value is raw (URL-encoded on the wire).
type header struct{ name, value string }

// event is a FreeSWITCH event being built. It is serialised once per wire
// format as it is emitted and not kept afterwards.
type event struct {
	name    string
	headers []header
	body    string
}

func (e *event) add(name, value string) { e.headers = append(e.headers, header{name, value}) }

// get returns the first header with the name (case-insensitive, like
// switch_event_get_header).
func (e *event) get(name string) (string, bool) {
	for i := range e.headers {
		if strings.EqualFold(e.headers[i].name, name) {
			return e.headers[i].value, true
		}
	}
	return "", false
}

// eventSource is where FreeSWITCH 1.10.12 fires each event from (the
// Event-Calling-* headers of the captures).
var eventSource = map[string][3]string{
	"CHANNEL_OUTGOING":         {"switch_core_session.c", "switch_core_session_outgoing_channel", "768"},
	"CHANNEL_CREATE":           {"switch_core_state_machine.c", "switch_core_session_run", "626"},
	"CHANNEL_ORIGINATE":        {"switch_core_state_machine.c", "switch_core_session_run", "632"},
	"CHANNEL_PROGRESS":         {"switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3505"},
	"CHANNEL_PROGRESS_MEDIA":   {"switch_channel.c", "switch_channel_perform_mark_pre_answered", "3560"},
	"CHANNEL_ANSWER":           {"switch_channel.c", "switch_channel_perform_mark_answered", "3846"},
	"CHANNEL_EXECUTE":          {"switch_core_session.c", "switch_core_session_exec", "2944"},
	"CHANNEL_EXECUTE_COMPLETE": {"switch_core_session.c", "switch_core_session_exec", "2967"},
	"CHANNEL_PARK":             {"switch_ivr.c", "switch_ivr_park", "1002"},
	// Not in the 1.10.12 captures: file and function from the FreeSWITCH
	// source, line numbers from a published 1.6 example.
	"CHANNEL_BRIDGE":          {"switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1501"},
	"CHANNEL_UNBRIDGE":        {"switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1686"},
	"CHANNEL_UNPARK":          {"switch_ivr.c", "switch_ivr_park", "1213"},
	"DTMF":                    {"switch_channel.c", "switch_channel_dequeue_dtmf", "677"},
	"RECORD_START":            {"switch_ivr_async.c", "record_callback", "1481"},
	"RECORD_STOP":             {"switch_ivr_async.c", "send_record_stop_event", "1240"},
	"CHANNEL_HANGUP":          {"switch_channel.c", "switch_channel_perform_hangup", "3445"},
	"CHANNEL_HANGUP_COMPLETE": {"switch_core_state_machine.c", "switch_core_session_reporting_state", "943"},
	"CHANNEL_DESTROY":         {"switch_core_session.c", "switch_core_session_perform_destroy", "1584"},
	"BACKGROUND_JOB":          {"mod_event_socket.c", "api_exec", "1572"},
	"HEARTBEAT":               {"switch_core.c", "send_heartbeat", "81"},
}

const seqIndex = 12 // position of Event-Sequence in the common block

// newEvent starts an event with the common header block every FreeSWITCH
// event carries. The caller holds s.mu; the returned event is s's scratch
// event and is valid until the next newEvent.
func (s *Sim) newEvent(name string) *event {
	e := &s.scratch
	e.name = name
	e.body = ""
	e.headers = e.headers[:0]
	local, gmt := s.dates.get(s.now)
	src := eventSource[name]
	e.headers = append(e.headers,
		header{"Event-Name", name},
		header{"Core-UUID", s.coreUUID},
		header{"FreeSWITCH-Hostname", s.cfg.Hostname},
		header{"FreeSWITCH-Switchname", s.cfg.Hostname},
		header{"FreeSWITCH-IPv4", "127.0.0.1"},
		header{"FreeSWITCH-IPv6", "::1"},
		header{"Event-Date-Local", local},
		header{"Event-Date-GMT", gmt},
		header{"Event-Date-Timestamp", uepoch(s.now)},
		header{"Event-Calling-File", src[0]},
		header{"Event-Calling-Function", src[1]},
		header{"Event-Calling-Line-Number", src[2]},
		header{"Event-Sequence", ""},
	)
	return e
}

// channelEvent builds a channel event the way switch_channel_event_set_data
// does: channel state block, codecs, caller profile, then the variables
// (except for CHANNEL_OUTGOING and DTMF, which carry none). The caller
// appends event-specific headers and emits it.
func (s *Sim) channelEvent(ch *channel, name string) *event {
	e := s.newEvent(name)
	s.addChannelData(e, ch, name)
	return e
}

// addChannelData appends what switch_channel_event_set_data adds.
func (s *Sim) addChannelData(e *event, ch *channel, name string) {
	if name == "CHANNEL_HANGUP_COMPLETE" {
		e.add("Hangup-Cause", ch.hangupCause)
	}
	e.add("Channel-State", ch.state)
	e.add("Channel-Call-State", ch.callState)
	e.add("Channel-State-Number", strconv.Itoa(ch.stateNum))
	e.add("Channel-Name", ch.name)
	e.add("Unique-ID", ch.uuid)
	e.add("Call-Direction", ch.direction)
	e.add("Presence-Call-Direction", ch.direction)
	e.add("Channel-HIT-Dialplan", strconv.FormatBool(ch.hitDialplan))
	e.add("Channel-Call-UUID", ch.callUUID)
	e.add("Answer-State", ch.answerState)
	if ch.hangupCause != "" {
		e.add("Hangup-Cause", ch.hangupCause)
	}
	if ch.codecName != "" {
		e.add("Channel-Read-Codec-Name", ch.codecName)
		e.add("Channel-Read-Codec-Rate", ch.codecRate)
		e.add("Channel-Read-Codec-Bit-Rate", ch.codecBits)
		e.add("Channel-Write-Codec-Name", ch.codecName)
		e.add("Channel-Write-Codec-Rate", ch.codecRate)
		e.add("Channel-Write-Codec-Bit-Rate", ch.codecBits)
	}
	s.addProfile(e, ch)
	if ch.other != nil {
		e.add("Other-Type", ch.otherType)
		addOtherLeg(e, ch.other)
	}
	if name != "CHANNEL_OUTGOING" && name != "DTMF" {
		for i := range ch.vars {
			e.headers = append(e.headers, header{ch.vars[i].hname, ch.vars[i].value})
		}
	}
}

func (s *Sim) addProfile(e *event, ch *channel) {
	p := &ch.prof
	opt := func(name, v string) {
		if v != "" {
			e.add(name, v)
		}
	}
	e.add("Caller-Direction", ch.direction)
	e.add("Caller-Logical-Direction", ch.direction)
	opt("Caller-Dialplan", p.dialplan)
	opt("Caller-Caller-ID-Name", p.cidName)
	opt("Caller-Caller-ID-Number", p.cidNumber)
	opt("Caller-Orig-Caller-ID-Name", p.origCidName)
	opt("Caller-Orig-Caller-ID-Number", p.origCidNumber)
	opt("Caller-Callee-ID-Name", p.calleeName)
	opt("Caller-Callee-ID-Number", p.calleeNumber)
	opt("Caller-Network-Addr", p.networkAddr)
	opt("Caller-ANI", p.ani)
	opt("Caller-Destination-Number", p.dest)
	e.add("Caller-Unique-ID", ch.uuid)
	opt("Caller-Source", p.source)
	opt("Caller-Context", p.context)
	e.add("Caller-Channel-Name", ch.name)
	e.add("Caller-Profile-Index", "1")
	created := uepoch(ch.created)
	e.add("Caller-Profile-Created-Time", created)
	e.add("Caller-Channel-Created-Time", created)
	e.add("Caller-Channel-Answered-Time", uepoch(ch.answered))
	e.add("Caller-Channel-Progress-Time", uepoch(ch.progress))
	e.add("Caller-Channel-Progress-Media-Time", uepoch(ch.progressMedia))
	hangup := "0"
	if ch.showHangupTime {
		hangup = uepoch(ch.hungupAt)
	}
	e.add("Caller-Channel-Hangup-Time", hangup)
	e.add("Caller-Channel-Transfer-Time", "0")
	e.add("Caller-Channel-Resurrect-Time", "0")
	e.add("Caller-Channel-Bridged-Time", uepoch(ch.bridgedAt))
	e.add("Caller-Channel-Last-Hold", "0")
	e.add("Caller-Channel-Hold-Accum", "0")
	e.add("Caller-Screen-Bit", "true")
	e.add("Caller-Privacy-Hide-Name", "false")
	e.add("Caller-Privacy-Hide-Number", "false")
}

// emitChannel builds and emits a channel event with extra trailing headers
// (name, value pairs). Events of invisible legs are dropped.
func (s *Sim) emitChannel(ch *channel, name string, extra ...string) {
	if !ch.visible() {
		return
	}
	e := s.channelEvent(ch, name)
	for i := 0; i+1 < len(extra); i += 2 {
		e.add(extra[i], extra[i+1])
	}
	s.emit(e)
}

// emit numbers the event and queues it, serialised once per wire format,
// on every connection that subscribed to it and whose filters let it pass.
// An event nobody wants is only counted. The caller holds s.mu.
func (s *Sim) emit(e *event) {
	s.seq++
	e.headers[seqIndex].value = strconv.FormatUint(s.seq, 10)
	var plain, js, xml []byte
	for _, c := range s.conns {
		if !c.wants(e) {
			continue
		}
		var b []byte
		switch c.format {
		case formatJSON:
			if js == nil {
				js = serializeJSON(e)
			}
			b = js
		case formatXML:
			if xml == nil {
				xml = serializeXML(e)
			}
			b = xml
		default:
			if plain == nil {
				plain = serializePlain(e)
			}
			b = plain
		}
		c.pushEvent(b, s.faults.DropAfterEvents)
	}
}

// eventNames are the event names FreeSWITCH's "event" command accepts.
var eventNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE
		CHANNEL_CALLSTATE CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE
		CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE
		CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK
		CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN OUTBOUND_CHAN
		STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH MODULE_LOAD MODULE_UNLOAD DTMF
		MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE MESSAGE_WAITING MESSAGE_QUERY
		ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE PRIVATE_COMMAND HEARTBEAT TRAP
		ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY PHONE_FEATURE
		PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS CHANNEL_DATA GENERAL
		COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED SEND_INFO RECV_INFO
		RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START RECORD_STOP
		PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START
		MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT
		CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED ALL`) {
		eventNames[n] = true
	}
}

// lookupEventName resolves a name like switch_name_event: case-insensitive,
// with or without the SWITCH_EVENT_ prefix.
func lookupEventName(n string) (string, bool) {
	u := strings.ToUpper(n)
	u = strings.TrimPrefix(u, "SWITCH_EVENT_")
	return u, eventNames[u]
}

// filter is one "filter <header> <value>" of a connection.
type filter struct {
	header string
	value  string
	neg    bool
	re     *regexp.Regexp // value given as /regex/
	match  string         // value with its +/- prefix removed
}

func newFilter(name, value string) filter {
	f := filter{header: name, value: value}
	v := value
	for len(v) > 0 && (v[0] == '+' || v[0] == '-' || v[0] == ' ') {
		f.neg = v[0] == '-'
		v = v[1:]
	}
	f.match = v
	if strings.HasPrefix(value, "/") {
		pat := strings.TrimPrefix(v, "/")
		pat = strings.TrimSuffix(pat, "/")
		f.re, _ = regexp.Compile(pat)
	}
	return f
}

// passes applies a connection's filters like mod_event_socket: with filters
// set, an event goes out only if a positive filter matches and no negative
// one does; events without the filtered header never match.
func passes(filters []filter, e *event) bool {
	if len(filters) == 0 {
		return true
	}
	send := false
	for i := range filters {
		f := &filters[i]
		hv, ok := e.get(f.header)
		if !ok {
			continue
		}
		if send && !f.neg {
			continue
		}
		var cmp bool
		if f.re != nil {
			cmp = f.re.MatchString(hv)
		} else if strings.HasPrefix(f.value, "/") {
			cmp = false
		} else {
			cmp = strings.EqualFold(hv, f.match)
		}
		if cmp {
			if f.neg {
				return false
			}
			send = true
		}
	}
	return send
}
