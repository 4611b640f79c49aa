package dialer

import (
	"context"
	"fmt"
	"slices"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// MediaHandler runs what happens on a call once it is answered (its IVR
// flow) and takes its recordings' events. The tracker calls it on a switch's
// event goroutine: its methods must not block (they start their own work).
type MediaHandler interface {
	// Answered is called once, when a call with a FlowID is answered on sw.
	Answered(call controller.Call, sw controller.Switch)
	// RecordingEvent is called with each EventRecordStart and
	// EventRecordStop a switch reports, straight from the switch's event
	// goroutine: a recording's end may be reported after its call has ended
	// and is no longer tracked (Asterisk fetches the files then).
	RecordingEvent(ev controller.ChannelEvent)
}

// checkFlow returns an EINVALID error naming flow_id unless the tenant has
// the flow. Without a flow store every flow is unknown.
func (s *Service) checkFlow(ctx context.Context, tenant, id string) error {
	flows, ok := s.store.(controller.FlowStore)
	if !ok || s.cfg.Media == nil {
		return controller.FieldError("flow_id", "IVR flows are not enabled on this controller")
	}
	_, err := flows.GetFlow(ctx, tenant, id, 0)
	switch {
	case controller.ErrorCode(err) == controller.ENOTFOUND:
		return controller.FieldError("flow_id", "no flow %q", id)
	case err != nil:
		return fmt.Errorf("looking up flow %q: %w", id, err)
	}
	return nil
}

// media starts the flow of a call with one when it is answered (once:
// from is the call's state before ev).
func (t *tracker) media(call controller.Call, from controller.CallState, ev controller.ChannelEvent) {
	h := t.o.svc.cfg.Media
	if h == nil || ev.Kind != controller.EventAnswer {
		return
	}
	if call.FlowID != "" && from != controller.CallAnswered && call.State == controller.CallAnswered {
		h.Answered(call, t.o.sw)
	}
}

// Policy returns the compliance policy in force for a tenant: the one
// assigned to it through the API, else Config.Policy.
func (s *Service) Policy(ctx context.Context, tenant string) (compliance.Policy, error) {
	pctx, err := s.withPolicy(ctx, tenantOr(tenant), "")
	if err != nil {
		return compliance.Policy{}, err
	}
	if p, ok := pctx.Value(policyKey{}).(compliance.Policy); ok {
		return p, nil
	}
	return s.cfg.Policy, nil
}

// Switch returns the configured switch named name.
func (s *Service) Switch(name string) (controller.Switch, bool) {
	if o := s.owner(name); o != nil {
		return o.sw, true
	}
	return nil, false
}

// lookupHint says which reads the gate will not make for c under p, so the
// store can skip reading them ahead (a wrong hint only costs a round trip).
func lookupHint(p compliance.Policy, c controller.Call) controller.LookupHint {
	needsConsent := c.Purpose != "" && slices.Contains(p.ConsentRequired, c.Purpose)
	return controller.LookupHint{NoConsents: !needsConsent, NoCallerID: !p.CallerIDOwnedOnly}
}
