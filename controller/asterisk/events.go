package asterisk

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// event is one ARI WebSocket message reduced to the fields the driver
// reads. It is decoded with one encoding/json pass instead of
// ari.DecodeEvent, which decodes every message twice and converts every
// channel's creation time through protobuf; the field names and the
// timestamp format are ari's (ari.DateTime, ari.Events).
type event struct {
	Type       string       `json:"type"`
	Timestamp  ari.DateTime `json:"timestamp"`
	Channel    eventChannel `json:"channel"`
	Peer       eventChannel `json:"peer"` // Dial: the dialled channel (no "channel" key)
	DialStatus string       `json:"dialstatus"`
	Cause      int          `json:"cause"`
	Soft       bool         `json:"soft"`
	Digit      string       `json:"digit"`
	Playback   struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"playback"`
	Recording struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Duration int    `json:"duration"`
		Cause    string `json:"cause"`
	} `json:"recording"`
}

type eventChannel struct {
	ID           string       `json:"id"`
	State        string       `json:"state"`
	CreationTime ari.DateTime `json:"creationtime"`
}

// The event types the driver acts on.
var (
	evStasisStart        = ari.Events.StasisStart
	evStasisEnd          = ari.Events.StasisEnd
	evStateChange        = ari.Events.ChannelStateChange
	evDial               = ari.Events.Dial
	evHangupRequest      = ari.Events.ChannelHangupRequest
	evDestroyed          = ari.Events.ChannelDestroyed
	evDTMF               = ari.Events.ChannelDtmfReceived
	evPlaybackStarted    = ari.Events.PlaybackStarted
	evPlaybackFinished   = ari.Events.PlaybackFinished
	evRecordingStarted   = ari.Events.RecordingStarted
	evRecordingFinished  = ari.Events.RecordingFinished
	evRecordingFailed    = ari.Events.RecordingFailed
	evChannelLeftBridge  = ari.Events.ChannelLeftBridge
	evChannelEnteredBrdg = ari.Events.ChannelEnteredBridge
)

var errNoType = errors.New("ARI message without a type")

// decodeEvent parses one WebSocket text message. Messages of types the
// driver ignores are returned with only Type set to save the work.
func decodeEvent(data []byte) (event, error) {
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return event{}, err
	}
	if ev.Type == "" {
		return event{}, errNoType
	}
	return ev, nil
}

// channelID returns the channel an event is about ("" for none).
func (e *event) channelID() string {
	if e.Type == evDial {
		return e.Peer.ID
	}
	return e.Channel.ID
}

// at is the event's own time, or now when Asterisk sent none.
func (e *event) at() time.Time {
	if t := time.Time(e.Timestamp); !t.IsZero() {
		return t.UTC()
	}
	return time.Now().UTC()
}

// q850Names maps Q.850 cause codes to the names FreeSWITCH writes, so a
// call's HangupCause reads the same whichever switch carried it.
var q850Names = map[int]string{
	1: "UNALLOCATED_NUMBER", 2: "NO_ROUTE_TRANSIT_NET", 3: "NO_ROUTE_DESTINATION",
	6: "CHANNEL_UNACCEPTABLE", 7: "CALL_AWARDED_DELIVERED", 16: "NORMAL_CLEARING",
	17: "USER_BUSY", 18: "NO_USER_RESPONSE", 19: "NO_ANSWER", 20: "SUBSCRIBER_ABSENT",
	21: "CALL_REJECTED", 22: "NUMBER_CHANGED", 23: "REDIRECTION_TO_NEW_DESTINATION",
	25: "EXCHANGE_ROUTING_ERROR", 27: "DESTINATION_OUT_OF_ORDER", 28: "INVALID_NUMBER_FORMAT",
	29: "FACILITY_REJECTED", 30: "RESPONSE_TO_STATUS_ENQUIRY", 31: "NORMAL_UNSPECIFIED",
	34: "NORMAL_CIRCUIT_CONGESTION", 38: "NETWORK_OUT_OF_ORDER", 41: "NORMAL_TEMPORARY_FAILURE",
	42: "SWITCH_CONGESTION", 43: "ACCESS_INFO_DISCARDED", 44: "REQUESTED_CHAN_UNAVAIL",
	45: "PRE_EMPTED", 50: "FACILITY_NOT_SUBSCRIBED", 52: "OUTGOING_CALL_BARRED",
	54: "INCOMING_CALL_BARRED", 57: "BEARERCAPABILITY_NOTAUTH", 58: "BEARERCAPABILITY_NOTAVAIL",
	63: "SERVICE_UNAVAILABLE", 65: "BEARERCAPABILITY_NOTIMPL", 66: "CHAN_NOT_IMPLEMENTED",
	69: "FACILITY_NOT_IMPLEMENTED", 79: "SERVICE_NOT_IMPLEMENTED", 81: "INVALID_CALL_REFERENCE",
	88: "INCOMPATIBLE_DESTINATION", 95: "INVALID_MSG_UNSPECIFIED", 96: "MANDATORY_IE_MISSING",
	97: "MESSAGE_TYPE_NONEXIST", 98: "WRONG_MESSAGE", 99: "IE_NONEXIST", 100: "INVALID_IE_CONTENTS",
	101: "WRONG_CALL_STATE", 102: "RECOVERY_ON_TIMER_EXPIRE", 103: "MANDATORY_IE_LENGTH_ERROR",
	111: "PROTOCOL_ERROR", 127: "INTERWORKING",
}

// causeUnregisteredApp is reported when a channel callgate originated
// vanished without a single event (README: an originate into a Stasis app
// nobody is connected to is answered, Stasis() fails and the channel is
// gone; nothing reaches the WebSocket). It is a switch-side fault, not the
// callee's answer.
const causeUnregisteredApp = "SERVICE_UNAVAILABLE"

// failureCause picks the Q.850 name for a call that ends, from the last
// final Dial status seen and ChannelDestroyed's cause code:
//
//	Dial BUSY                          → USER_BUSY (Busy() destroys with cause 0)
//	Dial CONGESTION                    → NORMAL_CIRCUIT_CONGESTION (cause 0 too)
//	cause code ≠ 0                     → its Q.850 name (21 CALL_REJECTED, 1 UNALLOCATED_NUMBER, 19 NO_ANSWER, 16 …)
//	cause 0, Dial NOANSWER             → NO_ANSWER
//	cause 0, Dial CHANUNAVAIL          → REQUESTED_CHAN_UNAVAIL
//	cause 0, Dial CANCEL               → ORIGINATOR_CANCEL
//	cause 0, never answered, no Dial   → NO_ROUTE_DESTINATION (no such extension: what
//	                                     FreeSWITCH reports for an unknown loopback extension)
//	cause 0 after an answer            → NORMAL_CLEARING
//	unknown code                       → NORMAL_UNSPECIFIED
func failureCause(dialStatus string, code int, answered bool) string {
	switch dialStatus {
	case "BUSY":
		return "USER_BUSY"
	case "CONGESTION":
		return "NORMAL_CIRCUIT_CONGESTION"
	}
	if code != 0 {
		if n, ok := q850Names[code]; ok {
			return n
		}
		return "NORMAL_UNSPECIFIED"
	}
	switch {
	case answered:
		return "NORMAL_CLEARING"
	case dialStatus == "NOANSWER":
		return "NO_ANSWER"
	case dialStatus == "CHANUNAVAIL":
		return "REQUESTED_CHAN_UNAVAIL"
	case dialStatus == "CANCEL":
		return "ORIGINATOR_CANCEL"
	}
	return "NO_ROUTE_DESTINATION"
}

// finalDial reports whether a Dial status ends the dial attempt.
func finalDial(s string) bool {
	switch s {
	case "BUSY", "CONGESTION", "NOANSWER", "CHANUNAVAIL", "CANCEL", "DONTCALL", "TORTURE", "INVALIDARGS":
		return true
	}
	return false
}
