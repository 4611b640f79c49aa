package compliance_test

import (
	"context"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/stretchr/testify/require"
)

func TestHoursRule(t *testing.T) {
	t.Parallel()
	us, ok := compliance.Preset("us")
	require.True(t, ok)
	uk, ok := compliance.Preset("uk")
	require.True(t, ok)
	tcpa := anyTime()
	tcpa.Hours = everyDay("08:00", "21:00")

	tests := []struct {
		name   string
		number string
		policy compliance.Policy
		at     time.Time
		reason string // "" = allowed
		detail string // substring of the detail
	}{
		// US spring-forward, 2026-03-08: EDT (UTC-4) from 07:00 UTC. The
		// boundary is 08:00 local, i.e. 12:00 UTC, not 13:00 UTC as in EST.
		{"NY DST start 07:30 EDT", nyNumber, tcpa, utc(2026, 3, 8, 11, 30, 0), controller.ReasonOutsideHours, "Sun 07:30 EDT in America/New_York"},
		{"NY DST start 07:59:59 EDT", nyNumber, tcpa, utc(2026, 3, 8, 11, 59, 59), controller.ReasonOutsideHours, ""},
		{"NY DST start 08:00 EDT", nyNumber, tcpa, utc(2026, 3, 8, 12, 0, 0), "", "08:00 EDT"},
		{"NY DST start 08:30 EDT", nyNumber, tcpa, utc(2026, 3, 8, 12, 30, 0), "", ""},
		{"NY day before, same UTC is 07:30 EST", nyNumber, tcpa, utc(2026, 3, 7, 12, 30, 0), controller.ReasonOutsideHours, "Sat 07:30 EST"},
		{"NY DST start 20:59 EDT", nyNumber, tcpa, utc(2026, 3, 9, 0, 59, 0), "", ""},
		{"NY DST start 21:00 EDT", nyNumber, tcpa, utc(2026, 3, 9, 1, 0, 0), controller.ReasonOutsideHours, "Sun 21:00 EDT"},
		// US fall-back, 2026-11-01: EST (UTC-5) from 06:00 UTC.
		{"NY day before DST end 08:30 EDT", nyNumber, tcpa, utc(2026, 10, 31, 12, 30, 0), "", ""},
		{"NY DST end same UTC is 07:30 EST", nyNumber, tcpa, utc(2026, 11, 1, 12, 30, 0), controller.ReasonOutsideHours, "Sun 07:30 EST"},
		{"NY DST end 08:00 EST", nyNumber, tcpa, utc(2026, 11, 1, 13, 0, 0), "", ""},
		{"NY DST end 08:30 EST", nyNumber, tcpa, utc(2026, 11, 1, 13, 30, 0), "", ""},
		{"NY DST end 20:59 EST", nyNumber, tcpa, utc(2026, 11, 2, 1, 59, 0), "", ""},
		{"NY DST end 21:00 EST", nyNumber, tcpa, utc(2026, 11, 2, 2, 0, 0), controller.ReasonOutsideHours, "Sun 21:00 EST"},
		// Arizona keeps MST (UTC-7) all year: the same UTC boundary in
		// January, on the DST switch day and in July.
		{"Phoenix January 07:59", phoenixNumber, tcpa, utc(2026, 1, 15, 14, 59, 0), controller.ReasonOutsideHours, "07:59 MST in America/Phoenix"},
		{"Phoenix January 08:00", phoenixNumber, tcpa, utc(2026, 1, 15, 15, 0, 0), "", ""},
		{"Phoenix DST switch day 07:30", phoenixNumber, tcpa, utc(2026, 3, 8, 14, 30, 0), controller.ReasonOutsideHours, "07:30 MST"},
		{"Phoenix DST switch day 08:00", phoenixNumber, tcpa, utc(2026, 3, 8, 15, 0, 0), "", ""},
		{"Phoenix July 07:59", phoenixNumber, tcpa, utc(2026, 7, 15, 14, 59, 0), controller.ReasonOutsideHours, "07:59 MST"},
		{"Phoenix July 08:00", phoenixNumber, tcpa, utc(2026, 7, 15, 15, 0, 0), "", ""},
		{"Phoenix July 20:59", phoenixNumber, tcpa, utc(2026, 7, 16, 3, 59, 0), "", ""},
		{"Phoenix July 21:00", phoenixNumber, tcpa, utc(2026, 7, 16, 4, 0, 0), controller.ReasonOutsideHours, "21:00 MST"},
		{"Denver July same UTC is 08:30 MDT", denverNumber, tcpa, utc(2026, 7, 15, 14, 30, 0), "", ""},
		{"Phoenix July same UTC is 07:30 MST", phoenixNumber, tcpa, utc(2026, 7, 15, 14, 30, 0), controller.ReasonOutsideHours, ""},
		// Nevada 775 maps to Boise (Mountain) and Los Angeles (Pacific): only
		// the intersection, 08:00–20:00 Pacific, is allowed.
		{"Nevada 08:30 PDT / 09:30 MDT", nevadaNumber, tcpa, utc(2026, 6, 10, 15, 30, 0), "", ""},
		{"Nevada 07:30 PDT / 08:30 MDT", nevadaNumber, tcpa, utc(2026, 6, 10, 14, 30, 0), controller.ReasonOutsideHours, "07:30 PDT in America/Los_Angeles"},
		{"Nevada 19:30 PDT / 20:30 MDT", nevadaNumber, tcpa, utc(2026, 6, 11, 2, 30, 0), "", ""},
		{"Nevada 20:30 PDT / 21:30 MDT", nevadaNumber, tcpa, utc(2026, 6, 11, 3, 30, 0), controller.ReasonOutsideHours, "21:30 MDT in America/Boise"},
		// Unknown zones block.
		{"satellite number has no zone", satellite, tcpa, utc(2026, 6, 10, 15, 0, 0), controller.ReasonZoneUnknown, "region 001"},
		// Florida: 08:00–20:00 under the US preset, New York keeps 21:00.
		{"Miami 20:30 EDT", miamiNumber, us, utc(2026, 6, 11, 0, 30, 0), controller.ReasonOutsideHours, "US-FL: mon,tue,wed,thu,fri,sat,sun 08:00-20:00"},
		{"Miami 19:59 EDT", miamiNumber, us, utc(2026, 6, 10, 23, 59, 0), "", "US-FL"},
		{"New York 20:30 EDT", nyNumber, us, utc(2026, 6, 11, 0, 30, 0), "", "(default)"},
		{"Panhandle 20:30 CDT", panhandleNum, us, utc(2026, 6, 11, 1, 30, 0), controller.ReasonOutsideHours, "America/Chicago"},
		{"Panhandle 19:30 CDT", panhandleNum, us, utc(2026, 6, 11, 0, 30, 0), "", ""},
		// 689 (Orlando) is corrected to Eastern: 20:30 Central is 21:30 there.
		{"Orlando 689 21:30 EDT", orlando689, tcpa, utc(2026, 6, 11, 1, 30, 0), controller.ReasonOutsideHours, "America/New_York"},
		// UK preset: no Sunday calls.
		{"UK Sunday noon", ukNumber, uk, utc(2026, 6, 14, 11, 0, 0), controller.ReasonOutsideHours, "Sun 12:00 BST"},
		{"UK Monday noon", ukNumber, uk, utc(2026, 6, 15, 11, 0, 0), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := compliance.HoursRule{}.Check(context.Background(), input(t, tt.number, tt.policy, newFake(), tt.at))
			require.NoError(t, err)
			require.Equal(t, "hours", v.Rule)
			require.Equal(t, tt.reason == "", v.Allow, v.Detail)
			require.Equal(t, tt.reason, v.Reason, v.Detail)
			require.Contains(t, v.Detail, tt.detail)
			require.NotContains(t, v.Detail, tt.number[2:])
		})
	}
}

func TestHoursRuleUnknownZoneVariants(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	for _, zones := range [][]string{nil, {"Etc/Unknown"}, {"America/New_York", "Etc/Unknown"}, {"Mars/Olympus_Mons"}} {
		in := input(t, nyNumber, anyTime(), newFake(), now)
		in.Number.Zones = zones
		v, err := compliance.HoursRule{}.Check(context.Background(), in)
		require.NoError(t, err)
		require.False(t, v.Allow, "%v", zones)
		require.Equal(t, controller.ReasonZoneUnknown, v.Reason, "%v", zones)
	}
}

func TestHolidayRule(t *testing.T) {
	t.Parallel()
	p := anyTime()
	p.Holidays = map[string][]string{"US": {"2026-12-25"}, "US-FL": {"2026-11-27"}, "CN": {"2026-10-01"}}
	tests := []struct {
		name   string
		number string
		at     time.Time
		reason string
	}{
		{"US Christmas in New York", nyNumber, utc(2026, 12, 25, 15, 0, 0), controller.ReasonHoliday},
		{"Christmas Eve 23:30 EST is not yet the holiday", nyNumber, utc(2026, 12, 25, 4, 30, 0), ""},
		{"US-FL only date in Miami", miamiNumber, utc(2026, 11, 27, 15, 0, 0), controller.ReasonHoliday},
		{"US-FL only date in New York", nyNumber, utc(2026, 11, 27, 15, 0, 0), ""},
		{"CN National Day", cnNumber, utc(2026, 10, 1, 2, 0, 0), controller.ReasonHoliday},
		{"CN local date already Oct 1 while UTC is Sep 30", cnNumber, utc(2026, 9, 30, 17, 0, 0), controller.ReasonHoliday},
		// Nevada: 23:30 PDT Dec 24 is already 00:30 MST Dec 25 in Boise.
		{"several zones: holiday in any zone", nevadaNumber, utc(2026, 12, 25, 7, 30, 0), controller.ReasonHoliday},
		{"satellite: unknown zone", satellite, utc(2026, 12, 25, 15, 0, 0), ""},
		{"UK has no holidays configured", ukNumber, utc(2026, 12, 25, 15, 0, 0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := compliance.HolidayRule{}.Check(context.Background(), input(t, tt.number, p, newFake(), tt.at))
			require.NoError(t, err)
			require.Equal(t, tt.reason, v.Reason, v.Detail)
			require.Equal(t, tt.reason == "", v.Allow)
			if tt.reason != "" {
				require.NotEmpty(t, v.Evidence)
			}
		})
	}
	// A number with holidays for its region but no known zone cannot be
	// placed in a day: zone_unknown.
	in := input(t, nyNumber, p, newFake(), utc(2026, 12, 25, 15, 0, 0))
	in.Number.Zones = nil
	v, err := compliance.HolidayRule{}.Check(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, controller.ReasonZoneUnknown, v.Reason)
}

func TestHoursRuleCalleeZone(t *testing.T) {
	t.Parallel()
	p := anyTime()
	p.Hours = everyDay("08:00", "21:00")
	// 13:30 UTC: 09:30 in New York, 06:30 in Los Angeles.
	at := utc(2026, 6, 10, 13, 30, 0)
	in := input(t, nyNumber, p, newFake(), at)
	v, err := compliance.HoursRule{}.Check(context.Background(), in)
	require.NoError(t, err)
	require.True(t, v.Allow)

	in.Req.CalleeZone = "America/Los_Angeles" // the lead lives in California
	v, err = compliance.HoursRule{}.Check(context.Background(), in)
	require.NoError(t, err)
	require.False(t, v.Allow, "the callee's own zone is checked too")
	require.Contains(t, v.Detail, "America/Los_Angeles")

	// A number whose range has no zone is placed by the callee's zone.
	in = input(t, nyNumber, p, newFake(), at)
	in.Number.Zones = []string{"Etc/Unknown"}
	in.Req.CalleeZone = "America/New_York"
	v, err = compliance.HoursRule{}.Check(context.Background(), in)
	require.NoError(t, err)
	require.True(t, v.Allow, v.Detail)

	in.Req.CalleeZone = "Mars/Olympus_Mons"
	v, err = compliance.HoursRule{}.Check(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, controller.ReasonZoneUnknown, v.Reason)
}
