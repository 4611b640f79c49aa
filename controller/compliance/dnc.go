package compliance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// DNCInternalRule blocks numbers on an internal do-not-call list.
type DNCInternalRule struct{}

// Name returns "dnc_internal".
func (DNCInternalRule) Name() string { return "dnc_internal" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r DNCInternalRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	return dncVerdict(ctx, in, r.Name(), controller.ReasonDNCInternal, func(kind string) bool { return kind == KindInternal })
}

// DNCListRule blocks numbers on any other do-not-call list (national,
// imported, or of an unknown kind).
type DNCListRule struct{}

// Name returns "dnc_list".
func (DNCListRule) Name() string { return "dnc_list" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r DNCListRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	return dncVerdict(ctx, in, r.Name(), controller.ReasonDNCList, func(kind string) bool { return kind != KindInternal })
}

func dncVerdict(ctx context.Context, in *Input, rule, reason string, match func(kind string) bool) (controller.Verdict, error) {
	v := controller.Verdict{Rule: rule, Allow: true}
	hits, err := in.DNCHits(ctx)
	if err != nil {
		return v, fmt.Errorf("reading do-not-call lists: %w", err)
	}
	var kinds []string
	for _, h := range hits {
		if match(h.ListKind) {
			v.Evidence = append(v.Evidence, h.ListID)
			kinds = append(kinds, h.ListKind)
		}
	}
	if len(v.Evidence) > 0 {
		slices.Sort(kinds)
		v.Allow, v.Reason = false, reason
		v.Detail = fmt.Sprintf("number is on %d do-not-call list(s) (%s)", len(v.Evidence), strings.Join(slices.Compact(kinds), ", "))
	}
	return v, nil
}

// DNCScrubRule blocks every call of a tenant whose national lists are stale:
// older than the policy's NationalScrubMaxAgeDays or never scrubbed (US
// TSR, 16 CFR 310.4(b)(3)(iv): the registry must have been accessed within
// 31 days), and blocks when a list kind in RequiredDNCKinds is missing.
// Age is measured as a duration: a scrub exactly N×24 h old is still fresh.
type DNCScrubRule struct{}

// Name returns "dnc_scrub".
func (DNCScrubRule) Name() string { return "dnc_scrub" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r DNCScrubRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	p := in.Policy
	if p.NationalScrubMaxAgeDays == 0 && len(p.RequiredDNCKinds) == 0 {
		v.Detail = "policy sets no scrub requirement"
		return v, nil
	}
	lists, err := in.Lookup.DNCLists(ctx, in.Req.TenantID)
	if err != nil {
		return v, fmt.Errorf("reading do-not-call list metadata: %w", err)
	}
	var problems []string
	for _, kind := range p.RequiredDNCKinds {
		if !slices.ContainsFunc(lists, func(l controller.DNCList) bool { return l.Kind == kind }) {
			problems = append(problems, fmt.Sprintf("no %s list is loaded", kind))
		}
	}
	if maxAge := time.Duration(p.NationalScrubMaxAgeDays) * 24 * time.Hour; maxAge > 0 {
		for _, l := range lists {
			if l.Kind != KindNational {
				continue
			}
			switch {
			case l.LastScrubAt.IsZero():
				problems = append(problems, fmt.Sprintf("list %s was never scrubbed", l.ID))
				v.Evidence = append(v.Evidence, l.ID)
			case in.Now.Sub(l.LastScrubAt) > maxAge:
				problems = append(problems, fmt.Sprintf("list %s was last scrubbed %s, more than %d days ago",
					l.ID, l.LastScrubAt.UTC().Format(time.DateOnly), p.NationalScrubMaxAgeDays))
				v.Evidence = append(v.Evidence, l.ID)
			}
		}
	}
	if len(problems) > 0 {
		v.Allow, v.Reason = false, controller.ReasonDNCScrubStale
		v.Detail = strings.Join(problems, "; ")
	}
	return v, nil
}
