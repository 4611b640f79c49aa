// Package controller holds callgate's domain: calls, attempts, their states and
// the small interfaces that the drivers (FreeSWITCH, Asterisk, switchsim), the
// stores (PostgreSQL) and the HTTP API plug into. It imports only the standard
// library.
package controller

import (
	"fmt"
	"regexp"
	"time"
)

// CallID identifies a call. It is a UUID chosen by callgate before the call is
// originated and handed to the switch as the channel's UUID
// (origination_uuid on FreeSWITCH), so every switch event names it.
type CallID string

// DefaultTenant is the tenant every row belongs to until authentication
// assigns tenants to tokens.
const DefaultTenant = "default"

// CallState is where a call is in its life.
type CallState string

const (
	CallQueued      CallState = "queued"      // durable attempt written, not yet sent to a switch
	CallOriginating CallState = "originating" // originate sent (or about to be); never re-sent
	CallRinging     CallState = "ringing"     // the far end is alerting (CHANNEL_PROGRESS)
	CallEarly       CallState = "early"       // early media (CHANNEL_PROGRESS_MEDIA)
	CallAnswered    CallState = "answered"    // CHANNEL_ANSWER
	CallCompleted   CallState = "completed"   // answered, then hung up
	CallFailed      CallState = "failed"      // never answered; HangupCause says why
	CallCanceled    CallState = "canceled"    // withdrawn before it was originated
	CallBlocked     CallState = "blocked"     // the compliance gate refused it; never dialled
)

// CallStates lists every state, in life order.
var CallStates = []CallState{CallQueued, CallOriginating, CallRinging, CallEarly,
	CallAnswered, CallCompleted, CallFailed, CallCanceled, CallBlocked}

// Valid reports whether s is a known state.
func (s CallState) Valid() bool {
	for _, v := range CallStates {
		if v == s {
			return true
		}
	}
	return false
}

// Terminal reports whether a call in state s can no longer change.
func (s CallState) Terminal() bool {
	return s == CallCompleted || s == CallFailed || s == CallCanceled || s == CallBlocked
}

// rank orders the live states so that a late or reordered event can never
// move a call backwards.
func (s CallState) rank() int {
	switch s {
	case CallQueued:
		return 0
	case CallOriginating:
		return 1
	case CallRinging:
		return 2
	case CallEarly:
		return 3
	case CallAnswered:
		return 4
	default:
		return 5
	}
}

// CanTransition reports whether a call may move from one state to another.
// The allowed moves are:
//
//	queued      → originating, canceled, blocked, failed
//	originating → ringing, early, answered, failed
//	ringing     → early, answered, failed
//	early       → answered, failed (ringing is skipped silently)
//	answered    → completed
//
// A terminal state never changes.
func CanTransition(from, to CallState) bool {
	if from.Terminal() || !to.Valid() || from == to {
		return false
	}
	switch to {
	case CallCanceled, CallBlocked:
		return from == CallQueued
	case CallCompleted:
		return from == CallAnswered
	case CallFailed:
		return from != CallAnswered
	case CallOriginating:
		return from == CallQueued
	default: // ringing, early, answered: forward only, and only once sent
		return from != CallQueued && to.rank() > from.rank()
	}
}

// Call is one outbound call and its outcome: the CDR row.
type Call struct {
	ID             CallID            `json:"id"`
	TenantID       string            `json:"tenant_id"`
	AgentID        string            `json:"agent_id,omitempty"` // the agent the call is assigned to (placed with their token)
	AttemptID      int64             `json:"attempt_id"`
	Switch         string            `json:"switch,omitempty"` // switch asked for or chosen
	Trunk          string            `json:"trunk,omitempty"`  // the switch's trunk it leaves through (routing); empty: the switch's default
	To             string            `json:"to"`
	From           string            `json:"from"`
	CallerIDName   string            `json:"caller_id_name,omitempty"`
	Purpose        Purpose           `json:"purpose,omitempty"`
	FlowID         string            `json:"flow_id,omitempty"`     // the IVR flow run once the call is answered
	CampaignID     string            `json:"campaign_id,omitempty"` // the campaign that placed it
	LeadID         int64             `json:"lead_id,omitempty"`     // the campaign's lead it called
	CalleeZone     string            `json:"callee_zone,omitempty"` // the lead's own time zone, checked by the gate too
	Variant        string            `json:"variant,omitempty"`     // the campaign's A/B test variant it ran
	Tags           map[string]string `json:"tags,omitempty"`        // set by QA, agents and flows
	Disposition    string            `json:"disposition,omitempty"` // the call's outcome as people judge it
	Timeout        time.Duration     `json:"-"`
	Variables      map[string]string `json:"variables,omitempty"`
	State          CallState         `json:"state"`
	HangupCause    string            `json:"hangup_cause,omitempty"` // Q.850 name as FreeSWITCH writes it
	SIPStatus      int               `json:"sip_status,omitempty"`
	Billsec        int               `json:"billsec"`
	Duration       int               `json:"duration"`
	Reconciled     bool              `json:"reconciled,omitempty"` // final state learned from the switch's channel list, not its events
	IdempotencyKey string            `json:"-"`
	Decision       *Decision         `json:"decision,omitempty"` // the compliance gate's, when known
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	AnsweredAt     *time.Time        `json:"answered_at,omitempty"`
	EndedAt        *time.Time        `json:"ended_at,omitempty"`
}

// ErrIllegalTransition is wrapped by Apply when an event would move a call
// in a way CanTransition forbids.
var ErrIllegalTransition = Errorf(ECONFLICT, "illegal call state transition")

// Apply folds one channel event into a call. It returns the state the call
// should move to and whether the call changed at all (a change can be a new
// fact such as billsec without a new state). Events that arrive late (a
// CHANNEL_ANSWER after the call already completed) add their facts but never
// move the call backwards. It returns an error wrapping ErrIllegalTransition
// when the event asks for a move the state machine forbids; the call is then
// left as it was.
func Apply(c *Call, ev ChannelEvent) (changed bool, err error) {
	next := c.State
	switch ev.Kind {
	case EventOriginateSent:
		next = CallOriginating
	case EventProgress:
		next = CallRinging
	case EventProgressMedia:
		next = CallEarly
	case EventAnswer:
		next = CallAnswered
		if c.AnsweredAt == nil && !ev.At.IsZero() {
			at := ev.At
			c.AnsweredAt = &at
			changed = true
		}
	case EventHangupComplete, EventReconciledGone:
		changed = mergeHangup(c, ev) || changed
		if ev.Answered || c.AnsweredAt != nil {
			if c.AnsweredAt == nil && !ev.AnsweredAt.IsZero() {
				at := ev.AnsweredAt
				c.AnsweredAt = &at
			}
			if c.State != CallAnswered && !c.State.Terminal() {
				// Answer event lost or still in flight: pass through answered.
				c.State = CallAnswered
			}
			next = CallCompleted
		} else {
			next = CallFailed
		}
		if ev.Kind == EventReconciledGone {
			c.Reconciled = true
		}
	case EventHangup:
		changed = mergeHangup(c, ev) || changed
		return changed, nil // CHANNEL_HANGUP_COMPLETE carries the final state
	case EventOriginateFailed:
		changed = mergeHangup(c, ev) || changed
		if c.State == CallAnswered {
			return changed, nil
		}
		next = CallFailed
	case EventOriginateAccepted, EventCreate, EventDestroy:
		return changed, nil
	default:
		return changed, nil
	}
	if next == c.State {
		return changed, nil
	}
	if c.State.Terminal() || (!next.Terminal() && next.rank() < c.State.rank()) {
		// A late event for a call that has moved on: keep its facts only.
		return changed, nil
	}
	if !CanTransition(c.State, next) {
		return changed, fmt.Errorf("call %s %s → %s on %s: %w", c.ID, c.State, next, ev.Kind, ErrIllegalTransition)
	}
	c.State = next
	if next.Terminal() && c.EndedAt == nil {
		at := ev.At
		if at.IsZero() {
			at = time.Now()
		}
		c.EndedAt = &at
	}
	return true, nil
}

func mergeHangup(c *Call, ev ChannelEvent) bool {
	changed := false
	if ev.HangupCause != "" && c.HangupCause != ev.HangupCause && (c.HangupCause == "" || ev.Kind == EventHangupComplete) {
		c.HangupCause = ev.HangupCause
		changed = true
	}
	if ev.SIPStatus != 0 && c.SIPStatus != ev.SIPStatus {
		c.SIPStatus = ev.SIPStatus
		changed = true
	}
	if ev.Kind == EventHangupComplete {
		if c.Billsec != ev.Billsec || c.Duration != ev.Duration {
			c.Billsec, c.Duration = ev.Billsec, ev.Duration
			changed = true
		}
	}
	return changed
}

var (
	tagKeyRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	dispositionRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// CheckTags returns an EINVALID error naming the field unless tags (at most
// 32; keys [a-z][a-z0-9_]{0,31}; values at most 128 bytes of plain text, or
// empty to remove the tag) and disposition (empty, or the form of a key)
// may be stored on a call, and at least one of them is given.
func CheckTags(tags map[string]string, disposition string) error {
	if len(tags) == 0 && disposition == "" {
		return FieldError("tags", "give tags, a disposition or both")
	}
	if len(tags) > 32 {
		return FieldError("tags", "at most 32 tags at once")
	}
	for k, v := range tags {
		if !tagKeyRE.MatchString(k) {
			return FieldError("tags", "tag names must match %s", tagKeyRE)
		}
		if len(v) > 128 {
			return FieldError("tags."+k, "at most 128 bytes")
		}
		if err := CheckText("tags."+k, v); err != nil {
			return err
		}
	}
	if disposition != "" && !dispositionRE.MatchString(disposition) {
		return FieldError("disposition", "must match %s", dispositionRE)
	}
	return nil
}
