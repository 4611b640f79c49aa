package dialer

import (
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// permanentReasons are the gate's block reasons that will not change by
// waiting: a lead blocked for one of them is done.
var permanentReasons = map[string]bool{
	controller.ReasonNumberInvalid: true, controller.ReasonNumberSuspicious: true,
	controller.ReasonNumberReassigned: true, controller.ReasonCallerIDNotOwned: true,
	controller.ReasonConsentMissing: true, controller.ReasonConsentExpired: true,
	controller.ReasonConsentRevoked: true, controller.ReasonRefused: true,
	controller.ReasonDNCInternal: true, controller.ReasonDNCList: true,
}

// Dispositions a flow or an agent sets that end a lead: the person said
// no, or the campaign got what it called for.
var finalDispositions = map[string]bool{
	"refused": true, "do_not_call": true, "consent_refused": true, "wrong_number": true,
}

// ClassifyCall says how an ended campaign call went for its lead. reasons
// are the gate's block reasons when the call was blocked.
func ClassifyCall(c controller.Call, reasons []string) controller.Outcome {
	switch c.State {
	case controller.CallBlocked:
		for _, r := range reasons {
			if r == controller.ReasonRefused {
				return controller.OutcomeRefused
			}
		}
		for _, r := range reasons {
			if permanentReasons[r] {
				return controller.OutcomeBlocked
			}
		}
		return controller.OutcomeHeld
	case controller.CallCanceled:
		return controller.OutcomeCanceled
	}
	if c.Disposition != "" && finalDispositions[strings.ToLower(c.Disposition)] {
		return controller.OutcomeRefused
	}
	if c.AnsweredAt != nil || c.State == controller.CallCompleted {
		if strings.EqualFold(c.Disposition, "machine") {
			return controller.OutcomeMachine
		}
		if strings.EqualFold(c.Disposition, "abandoned") {
			return controller.OutcomeAbandoned
		}
		return controller.OutcomeAnswered
	}
	if c.SIPStatus == 603 {
		return controller.OutcomeDeclined
	}
	switch c.HangupCause {
	case "USER_BUSY":
		return controller.OutcomeBusy
	case "NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL", "ALLOTTED_TIMEOUT":
		return controller.OutcomeNoAnswer
	case "CALL_REJECTED":
		return controller.OutcomeRejected
	case "UNALLOCATED_NUMBER", "INVALID_NUMBER_FORMAT", "NO_ROUTE_DESTINATION", "NUMBER_CHANGED":
		return controller.OutcomeInvalidNumber
	}
	switch c.SIPStatus {
	case 486, 600:
		return controller.OutcomeBusy
	case 404, 484, 604:
		return controller.OutcomeInvalidNumber
	case 480, 408:
		return controller.OutcomeNoAnswer
	}
	return controller.OutcomeFailed
}

// heldDelay is how long a lead the gate held (outside calling hours, over
// a cap) waits before it is tried again, unless the campaign's "held" rule
// says otherwise. Held attempts do not count against max_attempts.
const heldDelay = 15 * time.Minute

// LeadStep is what becomes of a lead after an attempt.
type LeadStep struct {
	Done   bool
	NextAt time.Time // when not done
}

// NextStep applies a campaign's retry rules to a lead whose attempt ended
// with o. attempts is the lead's attempt count including this one (held and
// canceled attempts are not counted by the caller); perOutcome how many of
// its attempts ended with o, including this one.
func NextStep(c controller.Campaign, o controller.Outcome, attempts, perOutcome int, now time.Time) LeadStep {
	if o.Final() {
		return LeadStep{Done: true}
	}
	if o == controller.OutcomeHeld {
		d := heldDelay
		if r, ok := c.Retry[o]; ok && r.DelaySeconds > 0 {
			d = time.Duration(r.DelaySeconds) * time.Second
		}
		return LeadStep{NextAt: now.Add(d)}
	}
	if o == controller.OutcomeAnswered {
		return LeadStep{Done: true} // reached: nothing to retry
	}
	if c.MaxAttempts > 0 && attempts >= c.MaxAttempts {
		return LeadStep{Done: true}
	}
	r, ok := c.Retry[o]
	if !ok || perOutcome > r.Max {
		return LeadStep{Done: true}
	}
	return LeadStep{NextAt: now.Add(time.Duration(r.DelaySeconds) * time.Second)}
}
