package switchsim

import (
	"strconv"
	"strings"
	"time"
)

// legKind says which endpoint a channel belongs to; it decides the shape of
// its events (codec headers, caller profile, variables).
type legKind int

const (
	legLoopbackA legKind = iota // loopback/N-a: the leg callgate originates
	legLoopbackB                // loopback/N-b: runs the callee dialplan
	legSofia                    // sofia/<profile>/<number>: one outbound SIP leg
	legRemote                   // the far end of a SIP call: behaviour only, never visible
	legInbound                  // an inbound call callgate did not originate
)

// chanVar is one channel variable, kept with its event header name so
// serialising does not allocate.
type chanVar struct {
	hname string // "variable_" + name
	value string
}

// varList holds channel variables in FreeSWITCH's order: setting a
// variable removes it and appends it at the end; an empty value unsets it.
type varList []chanVar

func (v *varList) set(name, value string) {
	v.unset(name)
	if value != "" {
		*v = append(*v, chanVar{hname: "variable_" + name, value: value})
	}
}

func (v *varList) unset(name string) {
	vs := *v
	for i := range vs {
		if vs[i].hname[len("variable_"):] == name {
			copy(vs[i:], vs[i+1:])
			*v = vs[:len(vs)-1]
			return
		}
	}
}

func (v varList) get(name string) string {
	for i := range v {
		if v[i].hname[len("variable_"):] == name {
			return v[i].value
		}
	}
	return ""
}

// profile is a channel's caller profile (the Caller-* headers); empty
// fields are left out of events like switch_caller_profile_event_set_data.
type profile struct {
	dialplan      string
	cidName       string
	cidNumber     string
	origCidName   string
	origCidNumber string
	calleeName    string
	calleeNumber  string
	networkAddr   string
	ani           string
	dest          string
	source        string
	context       string
}

// flip swaps caller and callee like FreeSWITCH does on the originating leg
// once the originate succeeds (channel_cid_flipped).
func (p *profile) flip() {
	p.cidName, p.calleeName = p.calleeName, p.cidName
	p.cidNumber, p.calleeNumber = p.calleeNumber, p.cidNumber
}

// channel is one simulated FreeSWITCH session.
type channel struct {
	uuid      string
	name      string
	kind      legKind
	call      *call    // nil for inbound channels
	peer      *channel // the other loopback leg or the SIP far end
	sessionID int
	order     uint64 // creation order, for listings
	number    string // dialled number (callee digits)

	direction   string
	state       string
	stateNum    int
	callState   string
	answerState string
	hitDialplan bool
	callUUID    string
	codecName   string
	codecRate   string
	codecBits   string
	prof        profile
	vars        varList

	created        time.Time
	answered       time.Time
	progress       time.Time
	progressMedia  time.Time
	hungupAt       time.Time
	showHangupTime bool // Caller-Channel-Hangup-Time is reported from HANGUP_COMPLETE on
	hangupCause    string
	hungup         bool
	destroyed      bool
	hangupBySwitch bool // we ended a SIP call (BYE/CANCEL) rather than the far end
	sipProfile     string
	sipHost        string
	gateway        string
	apps           []*appRun // running applications, outermost first
	pending        []*appRun // sendmsg applications waiting to run
	script         []Step    // dialplan the channel runs (callee legs, inbound calls)
	pc             int
	timer          Timer
	dtmfQueue      []byte
	digitsDialed   []byte
	recordings     []*recording
	lastApp        string
	lastArg        string
	bridgedAt      time.Time    // Caller-Channel-Bridged-Time, bridge_epoch
	otherType      string       // Other-Type: originator (a bridge's outbound leg) or originatee
	other          *legSnapshot // the Other-Leg-* caller profile
	bridging       *bridge      // the bridge application this channel is running
}

func (ch *channel) visible() bool { return ch.kind != legRemote }

func (ch *channel) isSIP() bool { return ch.kind == legSofia }

func (ch *channel) setState(name string, num int) {
	ch.state = name
	ch.stateNum = num
}

// top is the innermost running application, or nil.
func (ch *channel) top() *appRun {
	if len(ch.apps) == 0 {
		return nil
	}
	return ch.apps[len(ch.apps)-1]
}

func (ch *channel) stopTimer() {
	if ch.timer != nil {
		ch.timer.Stop()
		ch.timer = nil
	}
}

// causeCodes maps FreeSWITCH hangup cause names to their codes.
var causeCodes = map[string]int{
	"NONE": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
	"CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
	"NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21,
	"NUMBER_CHANGED": 22, "REDIRECTION_TO_NEW_DESTINATION": 23, "EXCHANGE_ROUTING_ERROR": 25,
	"DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29,
	"RESPONSE_TO_STATUS_ENQUIRY": 30, "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34,
	"NETWORK_OUT_OF_ORDER": 38, "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42,
	"ACCESS_INFO_DISCARDED": 43, "REQUESTED_CHAN_UNAVAIL": 44, "PRE_EMPTED": 45,
	"FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52, "INCOMING_CALL_BARRED": 54,
	"BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58, "SERVICE_UNAVAILABLE": 63,
	"BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66, "FACILITY_NOT_IMPLEMENTED": 69,
	"SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81, "INCOMPATIBLE_DESTINATION": 88,
	"INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96, "MESSAGE_TYPE_NONEXIST": 97,
	"WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100, "WRONG_CALL_STATE": 101,
	"RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103, "PROTOCOL_ERROR": 111,
	"INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 700,
	"SYSTEM_SHUTDOWN": 701, "LOSE_RACE": 502, "MANAGER_REQUEST": 503, "BLIND_TRANSFER": 600,
	"ATTENDED_TRANSFER": 601, "ALLOTTED_TIMEOUT": 602, "USER_CHALLENGE": 603, "MEDIA_TIMEOUT": 604,
	"PICKED_OFF": 605, "USER_NOT_REGISTERED": 606, "PROGRESS_TIMEOUT": 607, "INVALID_GATEWAY": 608,
	"GATEWAY_DOWN": 609, "INVALID_URL": 610, "INVALID_PROFILE": 611, "NO_PICKUP": 612,
	"SRTP_READ_ERROR": 613, "BOWOUT": 614, "BUSY_EVERYWHERE": 615, "DECLINE": 616,
	"DOES_NOT_EXIST_ANYWHERE": 617, "NOT_ACCEPTABLE": 618, "UNWANTED": 619, "NO_IDENTITY": 620,
	"BAD_IDENTITY_INFO": 621, "UNSUPPORTED_CERTIFICATE": 622, "INVALID_IDENTITY": 623,
	"STALE_DATE": 624, "REJECT_ALL": 625,
}

// q850 is the variable_hangup_cause_q850 value: FreeSWITCH reports causes
// outside Q.850 (above 127) as NORMAL_CLEARING.
func q850(cause string) string {
	c, ok := causeCodes[cause]
	if !ok || c > 127 {
		c = 16
	}
	return strconv.Itoa(c)
}

// sipStatus is the SIP final response a SIP leg ends with for a cause.
func sipStatus(ch *channel) int {
	if !ch.answered.IsZero() {
		return 200
	}
	switch ch.hangupCause {
	case "USER_BUSY":
		return 486
	case "CALL_REJECTED":
		return 603
	case "UNALLOCATED_NUMBER":
		return 404
	case "NO_ANSWER", "ORIGINATOR_CANCEL", "NORMAL_CLEARING", "MANAGER_REQUEST":
		if ch.hangupBySwitch {
			return 487
		}
		return 480
	case "NO_ROUTE_DESTINATION":
		return 404
	case "DESTINATION_OUT_OF_ORDER", "NETWORK_OUT_OF_ORDER", "NORMAL_TEMPORARY_FAILURE":
		return 503
	}
	return 480
}

// secs and friends compute FreeSWITCH's CDR durations: whole-second values
// are differences of truncated epochs, not truncated differences.
func secsBetween(from, to time.Time) int64 {
	if from.IsZero() || to.IsZero() {
		return 0
	}
	return to.Unix() - from.Unix()
}

func msecsBetween(from, to time.Time) int64 {
	if from.IsZero() || to.IsZero() {
		return 0
	}
	return to.UnixMilli() - from.UnixMilli()
}

func usecsBetween(from, to time.Time) int64 {
	if from.IsZero() || to.IsZero() {
		return 0
	}
	return to.UnixMicro() - from.UnixMicro()
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// setCDRVariables sets the variables FreeSWITCH adds just before
// CHANNEL_HANGUP_COMPLETE, in its order.
func setCDRVariables(ch *channel) {
	v := &ch.vars
	if ch.isSIP() && !ch.hangupBySwitch {
		disp := "recv_bye"
		if ch.answered.IsZero() {
			disp = "recv_refuse"
		}
		v.set("sip_hangup_disposition", disp)
	}
	v.set("hangup_cause", ch.hangupCause)
	v.set("hangup_cause_q850", q850(ch.hangupCause))
	digits := "none"
	if len(ch.digitsDialed) > 0 {
		digits = string(ch.digitsDialed)
	}
	v.set("digits_dialed", digits)
	end := ch.hungupAt
	v.set("start_stamp", stamp(ch.created))
	v.set("profile_start_stamp", stamp(ch.created))
	if !ch.answered.IsZero() {
		v.set("answer_stamp", stamp(ch.answered))
	}
	if !ch.bridgedAt.IsZero() {
		v.set("bridge_stamp", stamp(ch.bridgedAt))
	}
	if !ch.progress.IsZero() {
		v.set("progress_stamp", stamp(ch.progress))
	}
	if !ch.progressMedia.IsZero() {
		v.set("progress_media_stamp", stamp(ch.progressMedia))
	}
	v.set("end_stamp", stamp(end))
	v.set("start_epoch", epoch(ch.created))
	v.set("start_uepoch", uepoch(ch.created))
	v.set("profile_start_epoch", epoch(ch.created))
	v.set("profile_start_uepoch", uepoch(ch.created))
	v.set("answer_epoch", epoch(ch.answered))
	v.set("answer_uepoch", uepoch(ch.answered))
	v.set("bridge_epoch", epoch(ch.bridgedAt))
	v.set("bridge_uepoch", uepoch(ch.bridgedAt))
	for _, name := range []string{"last_hold_epoch", "last_hold_uepoch",
		"hold_accum_seconds", "hold_accum_usec", "hold_accum_ms", "resurrect_epoch", "resurrect_uepoch"} {
		v.set(name, "0")
	}
	v.set("progress_epoch", epoch(ch.progress))
	v.set("progress_uepoch", uepoch(ch.progress))
	v.set("progress_media_epoch", epoch(ch.progressMedia))
	v.set("progress_media_uepoch", uepoch(ch.progressMedia))
	v.set("end_epoch", epoch(end))
	v.set("end_uepoch", uepoch(end))
	if ch.lastApp != "" {
		v.set("last_app", ch.lastApp)
		v.set("last_arg", ch.lastArg)
	}
	callerID := ch.prof.cidNumber
	if ch.prof.cidName != "" {
		callerID = `"` + ch.prof.cidName + `" <` + ch.prof.cidNumber + `>`
	}
	v.set("caller_id", callerID)
	c, a, p, pm := ch.created, ch.answered, ch.progress, ch.progressMedia
	flow := time.Time{} // the flow_bill* values count only answered calls, from creation
	if !a.IsZero() {
		flow = c
	}
	v.set("duration", i64(secsBetween(c, end)))
	v.set("billsec", i64(secsBetween(a, end)))
	v.set("progresssec", i64(secsBetween(c, p)))
	v.set("answersec", i64(secsBetween(c, a)))
	v.set("waitsec", "0")
	v.set("progress_mediasec", i64(secsBetween(c, pm)))
	v.set("flow_billsec", i64(secsBetween(flow, end)))
	v.set("mduration", i64(msecsBetween(c, end)))
	v.set("billmsec", i64(msecsBetween(a, end)))
	v.set("progressmsec", i64(msecsBetween(c, p)))
	v.set("answermsec", i64(msecsBetween(c, a)))
	v.set("waitmsec", "0")
	v.set("progress_mediamsec", i64(msecsBetween(c, pm)))
	v.set("flow_billmsec", i64(msecsBetween(flow, end)))
	v.set("uduration", i64(usecsBetween(c, end)))
	v.set("billusec", i64(usecsBetween(a, end)))
	v.set("progressusec", i64(usecsBetween(c, p)))
	v.set("answerusec", i64(usecsBetween(c, a)))
	v.set("waitusec", "0")
	v.set("progress_mediausec", i64(usecsBetween(c, pm)))
	v.set("flow_billusec", i64(usecsBetween(flow, end)))
	if ch.kind == legLoopbackA || ch.kind == legLoopbackB {
		v.set("is_loopback", "1")
	}
	if ch.isSIP() && ch.hangupBySwitch {
		// We sent the BYE or CANCEL: mod_sofia records it after the CDR.
		status := strconv.Itoa(sipStatus(ch))
		if ch.answered.IsZero() {
			v.set("sip_hangup_disposition", "send_cancel")
			v.set("sip_invite_failure_status", status)
			v.set("sip_invite_failure_phrase", "CANCEL")
		} else {
			v.set("sip_hangup_disposition", "send_bye")
		}
		v.set("sip_term_status", status)
	}
}

// setSIPHangupVariables sets what mod_sofia records when the far end ends
// a SIP leg (BYE or a final error response), before CHANNEL_HANGUP.
func setSIPHangupVariables(ch *channel) {
	status := strconv.Itoa(sipStatus(ch))
	code := q850(ch.hangupCause)
	ch.vars.set("sip_reason", "Q.850;cause="+code+";text=\""+ch.hangupCause+"\"")
	ch.vars.set("sip_term_status", status)
	ch.vars.set("proto_specific_hangup_cause", "sip:"+status)
	ch.vars.set("sip_term_cause", code)
	if ch.answered.IsZero() {
		phrase := map[string]string{"486": "Busy Here", "603": "Decline", "404": "Not Found",
			"480": "Temporarily Unavailable", "503": "Service Unavailable"}[status]
		ch.vars.set("sip_invite_failure_status", status)
		ch.vars.set("sip_invite_failure_phrase", phrase)
	}
}

// setSIPAnswerVariables sets what mod_sofia learns from the 200 OK, in its
// order (some variables set at INVITE time are set again and so move).
func setSIPAnswerVariables(ch *channel, callID string) {
	v := &ch.vars
	host, _, _ := strings.Cut(ch.sipHost, ":")
	tag := ch.uuid[:8]
	v.set("sip_local_network_addr", "127.0.0.1")
	v.set("sip_reply_host", host)
	v.set("sip_reply_port", "5060")
	v.set("sip_network_ip", host)
	v.set("sip_network_port", "5060")
	v.set("sip_user_agent", "switchsim-callee")
	v.set("sip_allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY")
	v.set("sip_full_from", "<sip:"+ch.prof.origCidNumber+"@"+host+">;tag=sim"+tag)
	v.set("sip_full_to", "<sip:"+ch.number+"@"+ch.sipHost+">;tag=callee"+tag)
	v.set("sip_from_user", ch.prof.origCidNumber)
	v.set("sip_from_uri", ch.prof.origCidNumber+"@"+host)
	v.set("sip_from_host", host)
	v.set("sip_to_user", ch.number)
	v.set("sip_to_uri", ch.number+"@"+ch.sipHost)
	v.set("sip_to_host", host)
	v.set("sip_to_tag", "callee"+tag)
	v.set("sip_from_tag", "sim"+tag)
	v.set("sip_cseq", "1")
	v.set("sip_call_id", callID)
	v.set("rtp_use_codec_string", "PCMU,PCMA")
	v.set("remote_audio_media_flow", "sendrecv")
	v.set("rtp_audio_recv_pt", "0")
	v.set("rtp_use_codec_name", "PCMU")
	v.set("rtp_use_codec_rate", "8000")
	v.set("rtp_use_codec_ptime", "20")
	v.set("rtp_use_codec_channels", "1")
	v.set("read_codec", "PCMU")
	v.set("original_read_codec", "PCMU")
	v.set("read_rate", "8000")
	v.set("original_read_rate", "8000")
	v.set("write_codec", "PCMU")
	v.set("write_rate", "8000")
	v.set("dtmf_type", "rfc2833")
	v.set("local_media_ip", "127.0.0.1")
	v.set("local_media_port", "24000")
	v.set("advertised_media_ip", "127.0.0.1")
	v.set("rtp_use_pt", "0")
	v.set("rtp_2833_send_payload", "101")
	v.set("rtp_2833_recv_payload", "101")
	v.set("remote_media_ip", host)
	v.set("remote_media_port", "20000")
	ch.codecName, ch.codecRate, ch.codecBits = "PCMU", "8000", "64000"
	ch.prof.networkAddr = host
	ch.prof.calleeName = ch.number
	ch.prof.calleeNumber = ch.number
}
