package controller

import (
	"context"
	"time"
)

// EventKind names what a switch told us about a channel callgate originated.
type EventKind string

const (
	EventOriginateSent     EventKind = "originate_sent"     // synthetic: callgate is about to send the originate
	EventOriginateAccepted EventKind = "originate_accepted" // BACKGROUND_JOB +OK <uuid>
	EventOriginateFailed   EventKind = "originate_failed"   // BACKGROUND_JOB -ERR <CAUSE>
	EventCreate            EventKind = "create"             // CHANNEL_CREATE
	EventProgress          EventKind = "progress"           // CHANNEL_PROGRESS (ringing)
	EventProgressMedia     EventKind = "progress_media"     // CHANNEL_PROGRESS_MEDIA (early media)
	EventAnswer            EventKind = "answer"             // CHANNEL_ANSWER
	EventHangup            EventKind = "hangup"             // CHANNEL_HANGUP
	EventHangupComplete    EventKind = "hangup_complete"    // CHANNEL_HANGUP_COMPLETE: cause, billsec, duration
	EventDestroy           EventKind = "destroy"            // CHANNEL_DESTROY
	EventReconciledGone    EventKind = "reconciled_gone"    // synthetic: the switch no longer has the channel and its end was missed
)

// ChannelEvent is what a driver reports about one of callgate's calls. Drivers
// deliver the events of one call in the switch's order (Event-Sequence on
// FreeSWITCH) and only for channels callgate originated.
type ChannelEvent struct {
	Switch      string    `json:"switch"`
	CallID      CallID    `json:"call_id"`
	Kind        EventKind `json:"kind"`
	Name        string    `json:"name,omitempty"`     // the switch's own event name, e.g. CHANNEL_ANSWER
	Sequence    uint64    `json:"sequence,omitempty"` // the switch's event sequence; 0 for synthetic events
	At          time.Time `json:"at"`                 // when the switch says it happened
	HangupCause string    `json:"hangup_cause,omitempty"`
	SIPStatus   int       `json:"sip_status,omitempty"`
	Billsec     int       `json:"billsec,omitempty"`
	Duration    int       `json:"duration,omitempty"`
	Answered    bool      `json:"answered,omitempty"`    // hangup events: the channel had been answered
	AnsweredAt  time.Time `json:"answered_at,omitzero"`  // hangup events: when, if the switch says
	Detail      string    `json:"detail,omitempty"`      // free text, e.g. the raw -ERR line
	RecordPath  string    `json:"record_path,omitempty"` // recording events: the file on the switch
	RecordMS    int64     `json:"record_ms,omitempty"`   // EventRecordStop: the recorded length
}

// OriginateRequest is everything a driver needs to place one call. Every
// string in it may come from an API user: drivers must escape or reject what
// their wire format cannot carry safely.
type OriginateRequest struct {
	CallID         CallID
	To             string            // the number to dial, digits and an optional leading +
	Endpoint       string            // dial string after template expansion, e.g. sofia/gateway/carrier/+15551234567
	Trunk          string            // the trunk {trunk} expands to; empty: the switch's default (drivers refuse one not configured)
	CallerIDNumber string            // presented number
	CallerIDName   string            // presented name
	Timeout        time.Duration     // ring timeout; zero means the driver's default
	Variables      map[string]string // extra channel variables
	// Media is what the policy in force for the call's tenant demands of its
	// signalling and media. A driver that cannot guarantee it must not send
	// the originate (see MediaRequirement).
	Media MediaRequirement
}

// MediaRequirement is the transport security one call must have (DESIGN
// 1.2). The zero value requires nothing.
type MediaRequirement struct {
	// SRTP: the call's media must be SRTP (SDES keys), never RTP in clear;
	// a far end that refuses SRTP fails the call.
	SRTP bool
	// Suites are the SRTP crypto suites offered, in order of preference
	// (e.g. AES_CM_128_HMAC_SHA1_80); empty leaves the choice to the switch.
	Suites []string
	// TLS: the call's SIP signalling must leave the switch over TLS (which
	// also keeps the SDES keys out of clear text).
	TLS bool
}

// Required reports whether the call needs secure signalling or media.
func (m MediaRequirement) Required() bool { return m.SRTP || m.TLS }

// Secure-media states of a switch (SwitchStatus.SecureMedia).
const (
	// SecureMediaConfirmed: the switch is configured for TLS signalling and
	// SRTP and its driver verified it (how, per driver, in
	// SwitchStatus.SecureMediaDetail); it may carry calls that require them.
	SecureMediaConfirmed = "confirmed"
	// SecureMediaUnconfirmed: the switch is configured for secure media but
	// the driver cannot verify it now (not connected, the TLS profile is
	// down); calls that require secure media are not originated on it.
	SecureMediaUnconfirmed = "unconfirmed"
	// SecureMediaNotConfigured: the switch is not set up for secure media
	// (e.g. a loopback test switch); calls that require it never go there.
	SecureMediaNotConfigured = "not_configured"
)

// ReasonMediaInsecure is why a call that requires TLS or SRTP was not
// originated on a switch that cannot confirm them.
const ReasonMediaInsecure = "media_insecure"

// SwitchStatus is a switch's health as its driver sees it.
type SwitchStatus struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"` // "freeswitch" or "asterisk"
	Address     string    `json:"address"`
	Connected   bool      `json:"connected"`
	LastError   string    `json:"last_error,omitempty"`
	Sessions    int       `json:"sessions"`     // live channels on the switch
	MaxSessions int       `json:"max_sessions"` // callgate's limit for this switch
	MaxCPS      int       `json:"max_cps"`      // callgate's originations per second limit
	SwitchMax   int       `json:"switch_max_sessions,omitempty"`
	ConnectedAt time.Time `json:"connected_at,omitzero"`
	Reconnects  int       `json:"reconnects"`
	// SecureMedia is one of SecureMediaConfirmed, SecureMediaUnconfirmed or
	// SecureMediaNotConfigured; only a confirmed switch is sent calls that
	// require TLS or SRTP.
	SecureMedia string `json:"secure_media"`
	// SecureMediaDetail says how the state was established or why it is
	// not confirmed.
	SecureMediaDetail string `json:"secure_media_detail,omitempty"`
}

// Channel is one live channel as a switch lists it.
type Channel struct {
	UUID      string
	Name      string
	State     string // e.g. CS_EXECUTE
	CallState string // e.g. ACTIVE, RINGING, EARLY
	Answered  bool
}

// Switch is one media server callgate drives.
type Switch interface {
	// Name is the switch's configured name.
	Name() string
	// Originate asks the switch to place a call whose channel UUID is
	// req.CallID; events for it are delivered to the EventSink from before the
	// command is written. It returns once the switch has accepted the command
	// (not once the call is answered). An error wrapping ErrNotSent means the
	// command never reached the switch and may be retried; any other error is
	// ambiguous and the originate must never be repeated.
	Originate(ctx context.Context, req OriginateRequest) error
	// Hangup ends a call with a Q.850 cause name. Returns ENOTFOUND if the
	// switch has no such channel.
	Hangup(ctx context.Context, id CallID, cause string) error
	// Track registers a call the switch already has (one originated before a
	// restart) so its events are delivered to the EventSink again.
	Track(id CallID)
	// Channels lists the switch's live channels. Returns EUNAVAILABLE when the
	// switch is not connected.
	Channels(ctx context.Context) ([]Channel, error)
	// Status reports the switch's health without blocking on the network.
	Status() SwitchStatus
}

// EventSink receives channel events from drivers. Drivers call it from one
// goroutine per switch, in event order; implementations must not block for
// long (they may queue).
type EventSink interface {
	HandleChannelEvent(ev ChannelEvent)
	// SwitchConnected is called after every (re)connect, once events are
	// subscribed, so the owner can reconcile in-flight calls.
	SwitchConnected(name string)
}

// ErrNotSent marks an originate that certainly never reached the switch.
var ErrNotSent = Errorf(EUNAVAILABLE, "originate not sent")
