package compliance_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/stretchr/testify/require"
)

func TestPresetsValidate(t *testing.T) {
	t.Parallel()
	for _, name := range compliance.PresetNames() {
		p, ok := compliance.Preset(name)
		require.True(t, ok, name)
		require.NoError(t, p.Validate(), name)
		require.Equal(t, "preset-"+name, p.ID)

		// JSON round trip: presets are data.
		b, err := json.Marshal(p)
		require.NoError(t, err)
		var back compliance.Policy
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, p, back, name)
	}
	_, ok := compliance.Preset("fr")
	require.False(t, ok)

	// Each call returns a fresh copy.
	a, _ := compliance.Preset("us")
	a.RegionHours["US-FL"][0].End = "23:00"
	b, _ := compliance.Preset("us")
	require.Equal(t, "20:00", b.RegionHours["US-FL"][0].End)
}

func TestPresetContents(t *testing.T) {
	t.Parallel()
	cn, _ := compliance.Preset("cn")
	require.Equal(t, []controller.Purpose{controller.PurposeMarketing}, cn.ConsentRequired)
	require.Equal(t, 90, cn.RefusalLockDays)
	require.Equal(t, 15, cn.DailyCap)
	require.GreaterOrEqual(t, cn.EvidenceRetentionDays, 730)

	us, _ := compliance.Preset("us")
	require.Equal(t, "08:00", us.Hours[0].Start)
	require.Equal(t, "21:00", us.Hours[0].End)
	require.Equal(t, 31, us.NationalScrubMaxAgeDays)
	require.Equal(t, []string{"national"}, us.RequiredDNCKinds)
	require.InDelta(t, 3.0, us.MaxAbandonPercent, 0)
	require.Equal(t, compliance.Duration(30*24*time.Hour), us.AbandonWindow)

	uk, _ := compliance.Preset("uk")
	require.Equal(t, 28, uk.NationalScrubMaxAgeDays)
	require.Equal(t, compliance.RefusalForever, uk.RefusalLockDays)
	require.NotContains(t, uk.Hours[0].Days, "sun")
}

// TestPresetUSFlorida runs the whole gate: a Florida number gets 08:00–20:00
// and 3 per 24 h, a New York number 08:00–21:00 and no 24 h window.
func TestPresetUSFlorida(t *testing.T) {
	t.Parallel()
	us, _ := compliance.Preset("us")
	tests := []struct {
		name     string
		number   string
		at       time.Time
		attempts int // in the last hour
		reasons  []string
	}{
		{"Miami 19:59 EDT", miamiNumber, utc(2026, 6, 10, 23, 59, 0), 0, nil},
		{"Miami 20:00 EDT", miamiNumber, utc(2026, 6, 11, 0, 0, 0), 0, []string{controller.ReasonOutsideHours}},
		{"New York 20:00 EDT", nyNumber, utc(2026, 6, 11, 0, 0, 0), 0, nil},
		{"Miami 07:59 EDT", miamiNumber, utc(2026, 6, 10, 11, 59, 0), 0, []string{controller.ReasonOutsideHours}},
		{"Miami 08:00 EDT", miamiNumber, utc(2026, 6, 10, 12, 0, 0), 0, nil},
		{"Miami, 2 in 24 h", miamiNumber, utc(2026, 6, 10, 15, 0, 0), 2, nil},
		{"Miami, 3 in 24 h", miamiNumber, utc(2026, 6, 10, 15, 0, 0), 3, []string{controller.ReasonCapWindow}},
		{"New York, 3 in 24 h", nyNumber, utc(2026, 6, 10, 15, 0, 0), 3, nil},
		{"New York, 15 today", nyNumber, utc(2026, 6, 10, 15, 0, 0), 15, []string{controller.ReasonCapDaily}},
		{"Panhandle 19:30 CDT", panhandleNum, utc(2026, 6, 11, 0, 30, 0), 0, nil},
		{"Panhandle 20:00 CDT", panhandleNum, utc(2026, 6, 11, 1, 0, 0), 0, []string{controller.ReasonOutsideHours}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			f.lists = []controller.DNCList{{ID: "n1", Kind: "national", LastScrubAt: tt.at.AddDate(0, 0, -1)}}
			f.owned[tenant+"|"+ownedFrom] = true
			req := request(tt.number)
			req.Purpose = controller.PurposeService
			for i := range tt.attempts {
				f.attempts[tt.number] = append(f.attempts[tt.number], tt.at.Add(-time.Duration(i+1)*time.Minute))
			}
			d, err := newGate(t, us, tt.at).Check(context.Background(), req, f)
			require.NoError(t, err)
			require.Equal(t, tt.reasons, d.Reasons)
			require.Equal(t, tt.reasons == nil, d.Allow)
		})
	}
}

func TestPresetCNFlags170(t *testing.T) {
	t.Parallel()
	cn, _ := compliance.Preset("cn")
	at := utc(2026, 6, 10, 3, 0, 0) // 11:00 in Shanghai
	f := newFake()
	f.owned[tenant+"|+864001234567"] = true
	for _, n := range []string{cn170Number, cnNumber} {
		f.consents[n+"|marketing"] = &controller.Consent{ID: "c-" + n, Purpose: controller.PurposeMarketing, GivenAt: at.AddDate(0, 0, -1)}
	}
	req := request("17012345678")
	req.Region, req.From = "CN", "4001234567"
	d, err := newGate(t, cn, at).Check(context.Background(), req, f)
	require.NoError(t, err)
	require.False(t, d.Allow)
	require.Equal(t, []string{controller.ReasonNumberSuspicious}, d.Reasons)
	require.Equal(t, cn170Number, d.Number)
	var flagged bool
	for _, v := range d.Verdicts {
		if v.Reason == controller.ReasonNumberSuspicious {
			flagged = v.Review
		}
	}
	require.True(t, flagged, "170 is held for review, not blocked outright")

	req.To = "13812345678"
	d, err = newGate(t, cn, at).Check(context.Background(), req, f)
	require.NoError(t, err)
	require.True(t, d.Allow, "%v", d.Reasons)

	d, err = newGate(t, cn, utc(2026, 6, 10, 12, 30, 0)).Check(context.Background(), req, f) // 20:30 in Shanghai
	require.NoError(t, err)
	require.Equal(t, []string{controller.ReasonOutsideHours}, d.Reasons)
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field string
		mod   func(p *compliance.Policy)
	}{
		{"id", func(p *compliance.Policy) { p.ID = "" }},
		{"id", func(p *compliance.Policy) { p.ID = "a{b}" }},
		{"version", func(p *compliance.Policy) { p.Version = 0 }},
		{"consent_required[0]", func(p *compliance.Policy) { p.ConsentRequired = []controller.Purpose{"marketting"} }},
		{"refusal_lock_days", func(p *compliance.Policy) { p.RefusalLockDays = 0 }},
		{"refusal_lock_days", func(p *compliance.Policy) { p.RefusalLockDays = -2 }},
		{"daily_cap", func(p *compliance.Policy) { p.DailyCap = -1 }},
		{"windows[0].count", func(p *compliance.Policy) {
			p.Windows = []compliance.CapWindow{{Count: 0, Period: compliance.Duration(time.Hour)}}
		}},
		{"windows[0].period", func(p *compliance.Policy) { p.Windows = []compliance.CapWindow{{Count: 3}} }},
		{"hours", func(p *compliance.Policy) { p.Hours = nil }},
		{"hours[0].days", func(p *compliance.Policy) { p.Hours[0].Days = nil }},
		{"hours[0].days", func(p *compliance.Policy) { p.Hours[0].Days = []string{"monday"} }},
		{"hours[0].start", func(p *compliance.Policy) { p.Hours[0].Start = "8:00" }},
		{"hours[0].start", func(p *compliance.Policy) { p.Hours[0].Start = "24:00" }},
		{"hours[0].end", func(p *compliance.Policy) { p.Hours[0].End = "21:60" }},
		{"hours[0].end", func(p *compliance.Policy) { p.Hours[0].Start, p.Hours[0].End = "21:00", "08:00" }},
		{"region_hours.florida", func(p *compliance.Policy) {
			p.RegionHours = map[string][]compliance.HoursWindow{"florida": everyDay("08:00", "20:00")}
		}},
		{"region_hours.US-FL", func(p *compliance.Policy) { p.RegionHours = map[string][]compliance.HoursWindow{"US-FL": nil} }},
		{"region_hours.US-FL[0].end", func(p *compliance.Policy) {
			p.RegionHours = map[string][]compliance.HoursWindow{"US-FL": everyDay("08:00", "25:00")}
		}},
		{"region_caps.US-FL.windows[0].count", func(p *compliance.Policy) {
			p.RegionCaps = map[string]compliance.RegionCap{"US-FL": {Windows: []compliance.CapWindow{{Period: compliance.Duration(time.Hour)}}}}
		}},
		{"region_caps.US-FL.daily_cap", func(p *compliance.Policy) { p.RegionCaps = map[string]compliance.RegionCap{"US-FL": {DailyCap: -1}} }},
		{"holidays.US[0]", func(p *compliance.Policy) { p.Holidays = map[string][]string{"US": {"12/25/2026"}} }},
		{"holidays.usa", func(p *compliance.Policy) { p.Holidays = map[string][]string{"usa": {"2026-12-25"}} }},
		{"national_scrub_max_age_days", func(p *compliance.Policy) { p.NationalScrubMaxAgeDays = -1 }},
		{"required_dnc_kinds[0]", func(p *compliance.Policy) { p.RequiredDNCKinds = []string{"federal"} }},
		{"suspicious_ranges[0].prefix", func(p *compliance.Policy) {
			p.SuspiciousRanges = []compliance.RangeRule{{Prefix: "86170", Action: "block"}}
		}},
		{"suspicious_ranges[0].action", func(p *compliance.Policy) {
			p.SuspiciousRanges = []compliance.RangeRule{{Prefix: "+86170", Action: "flag"}}
		}},
		{"evidence_retention_days", func(p *compliance.Policy) { p.EvidenceRetentionDays = -1 }},
		{"zone_overrides.+1689", func(p *compliance.Policy) { p.ZoneOverrides = map[string][]string{"+1689": {"America/Orlando"}} }},
		{"zone_overrides.+1689", func(p *compliance.Policy) { p.ZoneOverrides = map[string][]string{"+1689": nil} }},
		{"zone_overrides.1689", func(p *compliance.Policy) { p.ZoneOverrides = map[string][]string{"1689": {"America/New_York"}} }},
		{"max_abandon_percent", func(p *compliance.Policy) { p.MaxAbandonPercent = 101 }},
		{"media_security.require_tls", func(p *compliance.Policy) {
			p.MediaSecurity = compliance.MediaSecurity{RequireSRTP: true, SRTPSuites: []string{"AES_CM_128_HMAC_SHA1_80"}}
		}},
		{"media_security.srtp_suites", func(p *compliance.Policy) {
			p.MediaSecurity = compliance.MediaSecurity{RequireSRTP: true, RequireTLS: true}
		}},
		{"media_security.srtp_suites", func(p *compliance.Policy) {
			p.MediaSecurity = compliance.MediaSecurity{RequireTLS: true, SRTPSuites: []string{"AES_CM_128_HMAC_SHA1_80"}}
		}},
		{"media_security.srtp_suites[1]", func(p *compliance.Policy) {
			p.MediaSecurity = compliance.MediaSecurity{RequireSRTP: true, RequireTLS: true,
				SRTPSuites: []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_NULL_AUTH"}}
		}},
		{"media_security.srtp_suites[1]", func(p *compliance.Policy) {
			p.MediaSecurity = compliance.MediaSecurity{RequireSRTP: true, RequireTLS: true,
				SRTPSuites: []string{"AEAD_AES_256_GCM_8", "AEAD_AES_256_GCM_8"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			p := anyTime()
			tt.mod(&p)
			err := p.Validate()
			require.Error(t, err)
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
			require.Equal(t, tt.field, controller.ErrorField(err), err.Error())
		})
	}
	ok := anyTime()
	ok.RefusalLockDays = compliance.RefusalForever
	ok.ZoneOverrides = map[string][]string{"+1689": {"America/New_York"}}
	require.NoError(t, ok.Validate())
	ok.MediaSecurity = compliance.MediaSecurity{RequireTLS: true} // TLS without SRTP is allowed
	require.NoError(t, ok.Validate())
}

// TestPresetMediaSecurity: the regulated presets demand TLS and SRTP with
// the two suites; lab (loopback demos) demands neither.
func TestPresetMediaSecurity(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"us", "uk", "cn"} {
		p, _ := compliance.Preset(name)
		require.Equal(t, compliance.MediaSecurity{RequireSRTP: true, RequireTLS: true,
			SRTPSuites: []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM_8"}}, p.MediaSecurity, name)
		require.Equal(t, controller.MediaRequirement{SRTP: true, TLS: true,
			Suites: []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM_8"}}, p.MediaSecurity.Requirement(), name)
	}
	lab, _ := compliance.Preset("lab")
	require.Equal(t, compliance.MediaSecurity{}, lab.MediaSecurity)
	require.False(t, lab.MediaSecurity.Requirement().Required())
	b, err := json.Marshal(lab)
	require.NoError(t, err)
	require.NotContains(t, string(b), "media_security", "an empty requirement is left out")

	// Decoded from JSON as an API user writes it.
	us, _ := compliance.Preset("us")
	b, err = json.Marshal(us)
	require.NoError(t, err)
	require.Contains(t, string(b), `"media_security":{"require_srtp":true,"srtp_suites":["AES_CM_128_HMAC_SHA1_80","AEAD_AES_256_GCM_8"],"require_tls":true}`)
	back, err := compliance.DecodePolicy(b)
	require.NoError(t, err)
	require.NoError(t, back.Validate())
	require.Equal(t, us.MediaSecurity, back.MediaSecurity)

	_, err = compliance.DecodePolicy([]byte(`{"media_security":{"require_srtp":true,"srtp":"yes"}}`))
	require.Equal(t, "srtp", controller.ErrorField(err))
	require.Contains(t, compliance.SRTPSuiteNames(), "AEAD_AES_256_GCM_8")
	require.NotContains(t, compliance.SRTPSuiteNames(), "AES_CM_128_NULL_AUTH")
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		`"24h"`: 24 * time.Hour, `"90m"`: 90 * time.Minute, `"3d"`: 72 * time.Hour, `"0d"`: 0,
	} {
		var d compliance.Duration
		require.NoError(t, json.Unmarshal([]byte(in), &d), in)
		require.Equal(t, want, time.Duration(d), in)
	}
	for _, in := range []string{`86400`, `"3 days"`, `"-1d"`, `"xd"`, `null`} {
		var d compliance.Duration
		require.Error(t, json.Unmarshal([]byte(in), &d), in)
	}
	b, err := json.Marshal(compliance.CapWindow{Count: 3, Period: compliance.Duration(24 * time.Hour)})
	require.NoError(t, err)
	require.JSONEq(t, `{"count":3,"period":"24h0m0s"}`, string(b))
}
