package freeswitch

import (
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// header identifies one event header callgate reads. The event reader keeps
// only these (see eventParser), so a header the mapping starts to use must be
// added here and to headerNames.
type header uint8

const (
	hEventName header = iota
	hUniqueID
	hSequence
	hTimestamp
	hHangupCause
	hVarHangupCause
	hSIPTermStatus
	hBillsec
	hDuration
	hAnsweredTime
	hJobUUID
	hJobCommand
	hJobCommandArg
	hDTMFDigit
	hApplication
	hAppUUID
	hGatherDigits
	hReadResult
	hOriginateDisposition
	hLastBridgeCause
	hRecordPath
	hRecordMS
	hContentLength // the inner length of a body (BACKGROUND_JOB's result)
	numHeaders
)

// headerNames are the headers' names exactly as FreeSWITCH writes them.
// Names are matched case-sensitively: FreeSWITCH never varies them.
var headerNames = [numHeaders]string{
	hEventName:            "Event-Name",
	hUniqueID:             "Unique-ID",
	hSequence:             "Event-Sequence",
	hTimestamp:            "Event-Date-Timestamp",
	hHangupCause:          "Hangup-Cause",
	hVarHangupCause:       "variable_hangup_cause",
	hSIPTermStatus:        "variable_sip_term_status",
	hBillsec:              "variable_billsec",
	hDuration:             "variable_duration",
	hAnsweredTime:         "Caller-Channel-Answered-Time",
	hJobUUID:              "Job-UUID",
	hJobCommand:           "Job-Command",
	hJobCommandArg:        "Job-Command-Arg",
	hDTMFDigit:            "DTMF-Digit",
	hApplication:          "Application",
	hAppUUID:              "Application-UUID",
	hGatherDigits:         "variable_" + gatherVar,
	hReadResult:           "variable_read_result",
	hOriginateDisposition: "variable_originate_disposition",
	hLastBridgeCause:      "variable_last_bridge_hangup_cause",
	hRecordPath:           "Record-File-Path",
	hRecordMS:             "variable_record_ms",
	hContentLength:        "Content-Length",
}

// event is one text/event-plain event reduced to the headers above,
// URL-decoded, and its body. Every value is a substring of data, so an event
// costs one allocation. The zero value is an event without headers.
type event struct {
	data  string
	spans [numHeaders]span
	body  span
}

// span is a value's position in event.data.
type span struct{ lo, hi uint32 }

// get returns a header's decoded value, "" if the event did not carry it.
func (e *event) get(h header) string { return e.data[e.spans[h].lo:e.spans[h].hi] }

// bodyText returns the event's body ("" if it has none).
func (e *event) bodyText() string { return e.data[e.body.lo:e.body.hi] }

const eventBackgroundJob = "BACKGROUND_JOB"

// Kinds for the events the domain package has no constant for yet. The
// dialer's Apply ignores them; IVR and recording code can use them.
const (
	EventExecuteComplete controller.EventKind = "execute_complete" // CHANNEL_EXECUTE_COMPLETE; Detail is the application
	EventDTMF            controller.EventKind = "dtmf"             // DTMF; Detail is the digit
)

// channelKinds maps the channel events callgate subscribes to onto kinds.
var channelKinds = map[string]controller.EventKind{
	"CHANNEL_CREATE":           controller.EventCreate,
	"CHANNEL_PROGRESS":         controller.EventProgress,
	"CHANNEL_PROGRESS_MEDIA":   controller.EventProgressMedia,
	"CHANNEL_ANSWER":           controller.EventAnswer,
	"CHANNEL_HANGUP":           controller.EventHangup,
	"CHANNEL_HANGUP_COMPLETE":  controller.EventHangupComplete,
	"CHANNEL_DESTROY":          controller.EventDestroy,
	"CHANNEL_EXECUTE_COMPLETE": EventExecuteComplete,
	"DTMF":                     EventDTMF,
	"RECORD_START":             controller.EventRecordStart,
	"RECORD_STOP":              controller.EventRecordStop,
}

// The number parsers below return 0 for an absent header without calling
// strconv, whose error for "" allocates: most events lack most numbers.

// eventSequence returns the event's Event-Sequence, 0 if absent or invalid.
func eventSequence(ev *event) uint64 {
	v := ev.get(hSequence)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// microsTime converts a FreeSWITCH µs-epoch header; zero for 0 or invalid.
func microsTime(v string) time.Time {
	if v == "" || v == "0" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func atoi(v string) int {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// mapChannelEvent turns a channel event into a ChannelEvent for switchName.
// ok is false for event names callgate does not map (and for
// BACKGROUND_JOB, which mapJob handles).
func mapChannelEvent(switchName string, ev *event) (ce controller.ChannelEvent, ok bool) {
	name := ev.get(hEventName)
	kind, ok := channelKinds[name]
	if !ok {
		return ce, false
	}
	ce = controller.ChannelEvent{
		Switch:   switchName,
		CallID:   controller.CallID(ev.get(hUniqueID)),
		Kind:     kind,
		Name:     name,
		Sequence: eventSequence(ev),
		At:       microsTime(ev.get(hTimestamp)),
	}
	ce.HangupCause = ev.get(hHangupCause)
	if ce.HangupCause == "" {
		ce.HangupCause = ev.get(hVarHangupCause)
	}
	ce.SIPStatus = atoi(ev.get(hSIPTermStatus))
	ce.Billsec = atoi(ev.get(hBillsec))
	ce.Duration = atoi(ev.get(hDuration))
	switch kind {
	case controller.EventHangup, controller.EventHangupComplete, controller.EventDestroy:
		if at := microsTime(ev.get(hAnsweredTime)); !at.IsZero() {
			ce.Answered, ce.AnsweredAt = true, at
		}
	case EventDTMF:
		ce.Detail = ev.get(hDTMFDigit)
	case EventExecuteComplete:
		ce.Detail = ev.get(hApplication)
	case controller.EventRecordStart, controller.EventRecordStop:
		ce.RecordPath = ev.get(hRecordPath)
		ce.RecordMS = int64(atoi(ev.get(hRecordMS)))
	}
	return ce, true
}

// jobResult is what a BACKGROUND_JOB says about an originate.
type jobResult struct {
	jobUUID  string
	command  string // Job-Command, "originate" for ours
	line     string // first line of the body: "+OK <uuid>" or "-ERR <CAUSE>"
	accepted bool
	cause    string // the -ERR cause when it looks like one
	bodyUUID string // the uuid after +OK
	argUUID  string // origination_uuid found in Job-Command-Arg
	seq      uint64
	at       time.Time
}

// parseJob reads a BACKGROUND_JOB event.
func parseJob(ev *event) jobResult {
	j := jobResult{
		jobUUID: ev.get(hJobUUID),
		command: ev.get(hJobCommand),
		seq:     eventSequence(ev),
		at:      microsTime(ev.get(hTimestamp)),
	}
	line, _, _ := strings.Cut(ev.bodyText(), "\n")
	j.line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(j.line, "+OK"):
		j.accepted = true
		if id := strings.TrimSpace(strings.TrimPrefix(j.line, "+OK")); validUUID(id) {
			j.bodyUUID = id
		}
	case strings.HasPrefix(j.line, "-ERR"):
		if f := strings.Fields(strings.TrimPrefix(j.line, "-ERR")); len(f) > 0 && causeRE.MatchString(f[0]) {
			j.cause = f[0]
		}
	}
	j.argUUID = originationUUID(ev.get(hJobCommandArg))
	return j
}

// originationUUID extracts origination_uuid=<uuid> from an originate's
// arguments, "" if absent.
func originationUUID(arg string) string {
	const key = "origination_uuid="
	i := strings.Index(arg, key)
	if i < 0 {
		return ""
	}
	rest := arg[i+len(key):]
	if len(rest) < 36 || !validUUID(rest[:36]) {
		return ""
	}
	return rest[:36]
}

// mapJob turns a BACKGROUND_JOB for call id into originate_accepted or
// originate_failed.
func mapJob(switchName string, id controller.CallID, j jobResult) controller.ChannelEvent {
	ce := controller.ChannelEvent{
		Switch:   switchName,
		CallID:   id,
		Kind:     controller.EventOriginateAccepted,
		Name:     eventBackgroundJob,
		Sequence: j.seq,
		At:       j.at,
		Detail:   j.line,
	}
	if !j.accepted {
		ce.Kind = controller.EventOriginateFailed
		ce.HangupCause = j.cause
	}
	return ce
}
