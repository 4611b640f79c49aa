package dialer

import (
	"context"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// Secure media at dial time (DESIGN 1.2).
//
// The policy in force for a call's tenant (its assignment, else
// Config.Policy) says whether the call requires TLS signalling and SRTP
// (compliance.MediaSecurity). The owner puts that requirement on the
// originate, and before it spends a compliance decision on a claimed call
// it checks the switch: a call that requires secure media is dialled only
// on a switch whose Status().SecureMedia is confirmed. Otherwise it is
// released back to the queue, due again after mediaInsecureDelay, with
// reason media_insecure, logged and counted
// (callgate_originations_total{result="media_insecure"}); whichever owner
// claims it next (another switch, or this one once confirmed) may dial it.
// It is never blocked or failed for this: the call is lawful, only this
// switch is not fit for it. A call that no compliant switch can ever take
// therefore stays queued, visible in the API as queued, and the switches'
// secure_media state in /v1/switches says why. The drivers refuse such an
// originate themselves too (not sent), in case the status changes between
// this check and the send.

// mediaInsecureDelay is how long a call held back by media_insecure waits
// before it is claimed again.
const mediaInsecureDelay = 30 * time.Second

// policyIn returns the policy ctx carries (resolved by withPolicy), else
// the default policy.
func (s *Service) policyIn(ctx context.Context) compliance.Policy {
	if p, ok := ctx.Value(policyKey{}).(compliance.Policy); ok {
		return p
	}
	return s.cfg.Policy
}

// mediaFit reports whether the owner's switch may carry a call with
// requirement m, and why not.
func (o *owner) mediaFit(m controller.MediaRequirement) (bool, string) {
	if !m.Required() {
		return true, ""
	}
	st := o.sw.Status()
	if st.SecureMedia == controller.SecureMediaConfirmed {
		return true, ""
	}
	state := st.SecureMedia
	if state == "" {
		state = "unknown"
	}
	why := "switch " + o.name + " secure media " + state
	if st.SecureMediaDetail != "" {
		why += ": " + st.SecureMediaDetail
	}
	return false, why
}

// holdInsecure releases a claimed call this switch cannot carry securely.
func (o *owner) holdInsecure(ctx context.Context, c controller.Call, why string) {
	o.svc.metrics.originations.WithLabelValues(o.name, controller.ReasonMediaInsecure).Inc()
	o.log.Warn("not dialling: the call requires TLS/SRTP and this switch cannot confirm them; back to the queue",
		"call_id", c.ID, "reason", controller.ReasonMediaInsecure, "detail", why)
	at := o.svc.cfg.Now().Add(max(mediaInsecureDelay, o.svc.cfg.RefusalDelay))
	if err := o.svc.store.ReleaseAttempt(context.WithoutCancel(ctx), c.ID, at, controller.ReasonMediaInsecure+": "+why); err != nil {
		o.log.Warn("releasing attempt", "call_id", c.ID, "err", err)
	}
}
