package compliance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// HoursRule allows a call only inside the calling windows in the callee's
// local time. Zones come from libphonenumber (GetTimezonesForNumber, with
// corrections and the policy's ZoneOverrides); a number with several zones
// is allowed only when the local time is inside the windows in EVERY zone
// (the intersection); an unknown zone blocks with zone_unknown. Windows are
// the policy's RegionHours for the number's subdivision or country, else
// Hours. Local wall-clock time is used, so DST switch days need no special
// case.
type HoursRule struct{}

// Name returns "hours".
func (HoursRule) Name() string { return "hours" }

// Check returns an error only for windows that do not parse, which
// Policy.Validate rules out.
func (r HoursRule) Check(_ context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	locs, err := calleeLocations(in)
	if err != nil {
		return zoneVerdict(v, err)
	}
	raw, key := in.Policy.hoursFor(in.Number)
	windows, err := parseHours(raw)
	if err != nil {
		return v, fmt.Errorf("parsing %s calling hours: %w", key, err)
	}
	var outside, inside []string
	for _, l := range locs {
		local := in.Now.In(l)
		desc := fmt.Sprintf("%s %s in %s", local.Format("Mon 15:04"), local.Format("MST"), l)
		v.Evidence = append(v.Evidence, "tz:"+l.String())
		if slices.ContainsFunc(windows, func(w window) bool { return w.contains(local) }) {
			inside = append(inside, desc)
		} else {
			outside = append(outside, desc)
		}
	}
	if len(outside) > 0 {
		v.Allow, v.Reason = false, controller.ReasonOutsideHours
		v.Detail = fmt.Sprintf("local time %s is outside the calling hours (%s: %s)",
			strings.Join(outside, ", "), key, formatWindows(raw))
		return v, nil
	}
	v.Detail = fmt.Sprintf("local time %s is inside the calling hours (%s)", strings.Join(inside, ", "), key)
	return v, nil
}

// HolidayRule blocks calls on the policy's Holidays: a date listed under
// the number's country or subdivision key that is the local date in ANY of
// its zones. An unknown zone blocks with zone_unknown (the local date is
// unknown).
type HolidayRule struct{}

// Name returns "holiday".
func (HolidayRule) Name() string { return "holiday" }

// Check never returns an error.
func (r HolidayRule) Check(_ context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	keys := regionKeys(in.Number)
	if !slices.ContainsFunc(keys, func(k string) bool { return len(in.Policy.Holidays[k]) > 0 }) {
		v.Detail = "no holidays for the number's region"
		return v, nil
	}
	locs, err := calleeLocations(in)
	if err != nil {
		return zoneVerdict(v, err)
	}
	var hits []string
	for _, l := range locs {
		date := in.Now.In(l).Format(time.DateOnly)
		for _, k := range keys {
			if slices.Contains(in.Policy.Holidays[k], date) {
				ev := "holiday:" + k + ":" + date
				if !slices.Contains(v.Evidence, ev) {
					v.Evidence = append(v.Evidence, ev)
					hits = append(hits, fmt.Sprintf("%s is a holiday in %s (local date in %s)", date, k, l))
				}
			}
		}
	}
	if len(hits) > 0 {
		v.Allow, v.Reason = false, controller.ReasonHoliday
		v.Detail = strings.Join(hits, "; ")
	}
	return v, nil
}

// zoneVerdict turns errZoneUnknown into a zone_unknown block and passes any
// other error on.
func zoneVerdict(v controller.Verdict, err error) (controller.Verdict, error) {
	var unknown errZoneUnknown
	if errors.As(err, &unknown) {
		v.Allow, v.Reason, v.Detail = false, controller.ReasonZoneUnknown, unknown.detail
		return v, nil
	}
	return v, err
}
