package compliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// The cap rules only count: the store runs the gate under a per-number lock
// in the transaction that creates the attempt, which makes count-then-create
// atomic across controllers. Counts cover every tenant and campaign.

// DailyCapRule enforces the policy's DailyCap, and the DailyCap of every
// RegionCaps entry that applies (the smallest wins), per calendar day in the
// callee's time zone. With several zones the day starts at the EARLIEST
// local midnight among them, so attempts made in any zone's "today" count
// (conservative: it can only count more). With no known zone it counts the
// last 24 hours, which covers any zone's day.
type DailyCapRule struct{}

// Name returns "cap_daily".
func (DailyCapRule) Name() string { return "cap_daily" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r DailyCapRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	limit, from := in.Policy.DailyCap, "policy"
	for _, key := range regionKeys(in.Number) {
		if c := in.Policy.RegionCaps[key].DailyCap; c > 0 && (limit == 0 || c < limit) {
			limit, from = c, key
		}
	}
	if limit == 0 {
		v.Detail = "no daily cap"
		return v, nil
	}
	since, basis := startOfLocalDay(in.Number, in.Now)
	n, err := in.Lookup.CountAttempts(ctx, in.Number.E164, since)
	if err != nil {
		return v, fmt.Errorf("counting today's attempts: %w", err)
	}
	v.Detail = fmt.Sprintf("%d of %d attempts (%s cap) since %s", n, limit, from, basis)
	if n >= limit {
		v.Allow, v.Reason = false, controller.ReasonCapDaily
		v.Detail = "daily cap reached: " + v.Detail
	}
	return v, nil
}

// startOfLocalDay returns the earliest start of the current local day among
// n's zones, and a description for people; now-24h when no zone is known.
func startOfLocalDay(n Number, now time.Time) (time.Time, string) {
	locs, err := locations(n)
	var unknown errZoneUnknown
	if errors.As(err, &unknown) {
		return now.Add(-24 * time.Hour), "24h ago (time zone unknown)"
	}
	var earliest time.Time
	var zone string
	for _, l := range locs {
		local := now.In(l)
		start := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, l)
		if earliest.IsZero() || start.Before(earliest) {
			earliest, zone = start, l.String()
		}
	}
	return earliest, fmt.Sprintf("local midnight %s in %s", earliest.Format(time.DateOnly), zone)
}

// WindowCapRule enforces the policy's rolling Windows and those of every
// RegionCaps entry that applies: for each, at most Count attempts in the
// Period before the instant judged.
type WindowCapRule struct{}

// Name returns "cap_window".
func (WindowCapRule) Name() string { return "cap_window" }

// Check returns the Lookup's error, wrapped, when it fails.
func (r WindowCapRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	type capped struct {
		CapWindow
		from string
	}
	var windows []capped
	for _, w := range in.Policy.Windows {
		windows = append(windows, capped{w, "policy"})
	}
	for _, key := range regionKeys(in.Number) {
		for _, w := range in.Policy.RegionCaps[key].Windows {
			windows = append(windows, capped{w, key})
		}
	}
	if len(windows) == 0 {
		v.Detail = "no rolling caps"
		return v, nil
	}
	counts := map[time.Duration]int{} // one count per distinct period
	var exceeded, seen []string
	for _, w := range windows {
		period := time.Duration(w.Period)
		n, ok := counts[period]
		if !ok {
			var err error
			if n, err = in.Lookup.CountAttempts(ctx, in.Number.E164, in.Now.Add(-period)); err != nil {
				return v, fmt.Errorf("counting attempts in the last %s: %w", period, err)
			}
			counts[period] = n
		}
		desc := fmt.Sprintf("%d of %d in %s (%s)", n, w.Count, period, w.from)
		seen = append(seen, desc)
		if n >= w.Count {
			exceeded = append(exceeded, desc)
		}
	}
	v.Detail = strings.Join(seen, "; ")
	if len(exceeded) > 0 {
		v.Allow, v.Reason = false, controller.ReasonCapWindow
		v.Detail = "rolling cap reached: " + strings.Join(exceeded, "; ")
	}
	return v, nil
}
