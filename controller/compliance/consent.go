package compliance

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/callgate/callgate/controller"
)

// ConsentRule requires, for the purposes in the policy's ConsentRequired,
// the newest consent in the ledger to be in force: given, not revoked, and
// not expired (a consent whose ExpiresAt is at or before the instant judged
// has expired). A request without a purpose is judged as needing consent
// whenever the policy requires consent for any purpose: an unlabelled call
// may be a marketing call.
type ConsentRule struct{}

// Name returns "consent".
func (ConsentRule) Name() string { return "consent" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r ConsentRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	required := in.Policy.ConsentRequired
	purpose := in.Req.Purpose
	switch {
	case purpose == "" && len(required) > 0:
		v.Allow, v.Reason = false, controller.ReasonConsentMissing
		v.Detail = "the call has no purpose and the policy requires consent for " + joinPurposes(required)
		return v, nil
	case !slices.Contains(required, purpose):
		v.Detail = fmt.Sprintf("policy requires no consent for purpose %q", purpose)
		return v, nil
	}
	c, err := in.Lookup.ActiveConsent(ctx, in.Req.TenantID, in.Number.E164, purpose)
	if err != nil {
		return v, fmt.Errorf("reading consent: %w", err)
	}
	if c == nil {
		v.Allow, v.Reason = false, controller.ReasonConsentMissing
		v.Detail = fmt.Sprintf("no consent for purpose %q", purpose)
		return v, nil
	}
	v.Evidence = []string{c.ID}
	switch {
	case c.RevokedAt != nil:
		v.Allow, v.Reason = false, controller.ReasonConsentRevoked
		v.Detail = fmt.Sprintf("consent for %q was revoked at %s", purpose, c.RevokedAt.UTC().Format(time.RFC3339))
	case c.ExpiresAt != nil && !in.Now.Before(*c.ExpiresAt):
		v.Allow, v.Reason = false, controller.ReasonConsentExpired
		v.Detail = fmt.Sprintf("consent for %q expired at %s", purpose, c.ExpiresAt.UTC().Format(time.RFC3339))
	case c.GivenAt.After(in.Now):
		v.Allow, v.Reason = false, controller.ReasonConsentMissing
		v.Detail = fmt.Sprintf("consent for %q is dated after the call (%s)", purpose, c.GivenAt.UTC().Format(time.RFC3339))
	default:
		v.Detail = fmt.Sprintf("consent for %q given at %s (%s)", purpose, c.GivenAt.UTC().Format(time.RFC3339), c.Source)
	}
	return v, nil
}

func joinPurposes(ps []controller.Purpose) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += string(p)
	}
	return s
}
