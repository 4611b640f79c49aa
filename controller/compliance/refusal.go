package compliance

import (
	"context"
	"fmt"
	"time"

	"github.com/callgate/callgate/controller"
)

// RefusalRule blocks a number under a refusal lock. The lock is
// enterprise-wide and its end was fixed when the refusal was recorded
// (Policy.RefusalUntil); the rule enforces the stored lock and ignores a
// refusal the store returns already lifted or ended.
type RefusalRule struct{}

// Name returns "refusal".
func (RefusalRule) Name() string { return "refusal" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r RefusalRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	ref, err := in.Lookup.ActiveRefusal(ctx, in.Number.E164, in.Now)
	if err != nil {
		return v, fmt.Errorf("reading refusals: %w", err)
	}
	if ref == nil || ref.LiftedAt != nil && !ref.LiftedAt.After(in.Now) || ref.Until != nil && !ref.Until.After(in.Now) {
		return v, nil
	}
	v.Allow, v.Reason, v.Evidence = false, controller.ReasonRefused, []string{ref.ID}
	until := "forever"
	if ref.Until != nil {
		until = "until " + ref.Until.UTC().Format(time.RFC3339)
	}
	v.Detail = fmt.Sprintf("number refused calls at %s (%s); locked %s", ref.At.UTC().Format(time.RFC3339), ref.Source, until)
	return v, nil
}
