package compliance

import (
	"context"
	"fmt"
	"strings"

	"github.com/callgate/callgate/controller"
	"github.com/nyaruka/phonenumbers"
)

// CallerIDRule, when the policy sets CallerIDOwnedOnly, lets a call present
// only a caller ID the tenant registered as its own. The caller ID is
// normalised like the callee (E.164 with the request's region); a number
// libphonenumber parses but does not call valid, such as a Chinese 95xxx
// service number, is looked up in its E.164 form.
type CallerIDRule struct{}

// Name returns "caller_id".
func (CallerIDRule) Name() string { return "caller_id" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r CallerIDRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	if !in.Policy.CallerIDOwnedOnly {
		v.Detail = "policy does not restrict the caller ID"
		return v, nil
	}
	from, ok := callerID(in.Req.From, in.Req.Region)
	if !ok {
		v.Allow, v.Reason = false, controller.ReasonCallerIDNotOwned
		v.Detail = "caller ID is missing or is not a phone number"
		return v, nil
	}
	owned, err := in.Lookup.CallerIDOwned(ctx, in.Req.TenantID, from)
	if err != nil {
		return v, fmt.Errorf("checking caller ID ownership: %w", err)
	}
	if !owned {
		v.Allow, v.Reason = false, controller.ReasonCallerIDNotOwned
		v.Detail = fmt.Sprintf("caller ID %s is not registered as owned by the tenant", controller.MaskNumber(from))
	}
	return v, nil
}

// callerID returns the E.164 form of raw, or false when raw is empty or
// cannot be parsed as a number at all.
func callerID(raw, region string) (_ string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxNumberInput {
		return "", false
	}
	pn, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil {
		return "", false
	}
	return phonenumbers.Format(pn, phonenumbers.E164), true
}
