package freeswitch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/percipia/eslgo"
)

// Header names as eslgo stores them: it parses events with net/textproto,
// which canonicalises keys (Unique-ID → Unique-Id, variable_billsec →
// Variable_billsec). A test checks each against textproto.
const (
	hEventName      = "Event-Name"
	hUniqueID       = "Unique-Id"
	hSequence       = "Event-Sequence"
	hTimestamp      = "Event-Date-Timestamp"
	hHangupCause    = "Hangup-Cause"
	hVarHangupCause = "Variable_hangup_cause"
	hSIPTermStatus  = "Variable_sip_term_status"
	hBillsec        = "Variable_billsec"
	hDuration       = "Variable_duration"
	hAnsweredTime   = "Caller-Channel-Answered-Time"
	hJobUUID        = "Job-Uuid"
	hJobCommand     = "Job-Command"
	hJobCommandArg  = "Job-Command-Arg"
	hDTMFDigit      = "Dtmf-Digit"
	hApplication    = "Application"
	hContentLength  = "Content-Length"
)

const eventBackgroundJob = "BACKGROUND_JOB"

// Kinds for the events the domain package has no constant for yet. The
// dialer's Apply ignores them; IVR and recording code can use them.
const (
	EventExecuteComplete controller.EventKind = "execute_complete" // CHANNEL_EXECUTE_COMPLETE; Detail is the application
	EventDTMF            controller.EventKind = "dtmf"             // DTMF; Detail is the digit
	EventRecordStart     controller.EventKind = "record_start"     // RECORD_START
	EventRecordStop      controller.EventKind = "record_stop"      // RECORD_STOP
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
	"RECORD_START":             EventRecordStart,
	"RECORD_STOP":              EventRecordStop,
}

// header returns the first value of a canonical header key, URL-decoded.
// Unlike eslgo's GetHeader it keeps the raw value when decoding fails rather
// than returning "".
func header(h textproto.MIMEHeader, key string) string {
	v := h[key]
	if len(v) == 0 {
		return ""
	}
	s := v[0]
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// decodePlainEvent parses a text/event-plain body exactly as eslgo's
// (unexported) readPlainEvent does, with bounds checks eslgo lacks: eslgo
// panics on a negative Content-Length and allocates whatever a huge one
// asks for. Used by the fuzz target and the benchmark; production events are
// parsed by eslgo itself.
func decodePlainEvent(body []byte) (*eslgo.Event, error) {
	r := bufio.NewReader(bytes.NewReader(body))
	h, err := textproto.NewReader(r).ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	ev := &eslgo.Event{Headers: h}
	if cl := h.Get(hContentLength); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil {
			return ev, err
		}
		if n < 0 || n > len(body) {
			return ev, errors.New("event body length out of range")
		}
		ev.Body = make([]byte, n)
		if _, err := io.ReadFull(r, ev.Body); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// eventSequence returns the event's Event-Sequence, 0 if absent or invalid.
func eventSequence(h textproto.MIMEHeader) uint64 {
	v := h[hSequence]
	if len(v) == 0 {
		return 0
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// microsTime converts a FreeSWITCH µs-epoch header; zero for 0 or invalid.
func microsTime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func atoi(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// mapChannelEvent turns a channel event into a ChannelEvent for switchName.
// ok is false for event names callgate does not map (and for
// BACKGROUND_JOB, which mapJob handles).
func mapChannelEvent(switchName string, ev *eslgo.Event) (ce controller.ChannelEvent, ok bool) {
	h := ev.Headers
	name := header(h, hEventName)
	kind, ok := channelKinds[name]
	if !ok {
		return ce, false
	}
	ce = controller.ChannelEvent{
		Switch:   switchName,
		CallID:   controller.CallID(header(h, hUniqueID)),
		Kind:     kind,
		Name:     name,
		Sequence: eventSequence(h),
		At:       microsTime(header(h, hTimestamp)),
	}
	ce.HangupCause = header(h, hHangupCause)
	if ce.HangupCause == "" {
		ce.HangupCause = header(h, hVarHangupCause)
	}
	ce.SIPStatus = atoi(header(h, hSIPTermStatus))
	ce.Billsec = atoi(header(h, hBillsec))
	ce.Duration = atoi(header(h, hDuration))
	switch kind {
	case controller.EventHangup, controller.EventHangupComplete, controller.EventDestroy:
		if at := microsTime(header(h, hAnsweredTime)); !at.IsZero() {
			ce.Answered, ce.AnsweredAt = true, at
		}
	case EventDTMF:
		ce.Detail = header(h, hDTMFDigit)
	case EventExecuteComplete:
		ce.Detail = header(h, hApplication)
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
func parseJob(ev *eslgo.Event) jobResult {
	h := ev.Headers
	j := jobResult{
		jobUUID: header(h, hJobUUID),
		command: header(h, hJobCommand),
		seq:     eventSequence(h),
		at:      microsTime(header(h, hTimestamp)),
	}
	line, _, _ := strings.Cut(string(ev.Body), "\n")
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
	j.argUUID = originationUUID(header(h, hJobCommandArg))
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
