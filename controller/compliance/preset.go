package compliance

import (
	"time"

	"github.com/callgate/callgate/controller"
)

// Preset returns a fresh copy of a built-in policy: "cn", "us" or "uk";
// false for any other name. Presets are starting points to copy and edit
// per tenant and campaign, not legal advice: each field's source is noted
// below, and where no rule was found the value is a conservative default
// and says so. None ships holidays (official calendars change yearly:
// tenants add them), and all count attempts across every campaign, which is
// stricter than laws that count per seller or per subject matter.
func Preset(name string) (Policy, bool) {
	switch name {
	case "cn":
		return presetCN(), true
	case "us":
		return presetUS(), true
	case "uk":
		return presetUK(), true
	case "lab":
		return presetLab(), true
	}
	return Policy{}, false
}

// PresetNames returns the names Preset knows.
func PresetNames() []string { return []string{"cn", "us", "uk", "lab"} }

// presetLab is for switchsim demos and tests, never for real traffic: any
// hour, no consent or national list required, but numbers must be valid,
// refusals lock for 90 days, a number gets at most 15 calls a day, and
// prompts may not say "free", "guaranteed" or "legal action". It requires
// neither TLS nor SRTP, so loopback test switches can carry its calls.
func presetLab() Policy {
	return Policy{
		ID: "preset-lab", Version: 1, Name: "Lab (switchsim demos and tests only)",
		RefusalLockDays: 90, DailyCap: 15,
		Hours:            daily("00:00", "24:00"),
		ForbiddenPhrases: []string{"free", "guaranteed", "legal action"},
	}
}

var everyDay = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

func daily(start, end string) []HoursWindow {
	return []HoursWindow{{Days: append([]string(nil), everyDay...), Start: start, End: end}}
}

// secureMedia is what the cn, us and uk presets demand of every call: SIP
// over TLS and SRTP with AES_CM_128_HMAC_SHA1_80 (RFC 4568's mandatory
// suite, which every SDES carrier offers) or AEAD_AES_256_GCM_8 (RFC 7714
// AES-GCM). No statute names a cipher: this is DESIGN 1.2's "TLS for SIP,
// mandatory SRTP", as a conservative default a tenant may tighten.
func secureMedia() MediaSecurity {
	return MediaSecurity{RequireSRTP: true, RequireTLS: true,
		SRTPSuites: []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM_8"}}
}

func days(n int) Duration { return Duration(time.Duration(n) * 24 * time.Hour) }

// presetCN: China.
//   - Consent for marketing: consumers' explicit consent before commercial
//     calls (Consumer Rights Protection Law art. 29; MIIT and 13 departments'
//     2018 action plan on nuisance calls; MIIT 2020 draft rules on short
//     messages and voice calls: no consent = refusal).
//   - Refusal lock 90 days, 15 calls a day, evidence kept ≥ 2 years: the
//     product's seed rules (DESIGN.md 1.1). Chinese rules say to stop after
//     a refusal without giving a period; a tenant wanting "forever" sets -1.
//   - Hours 09:00–20:00 every day: a conservative default. The 2018 action
//     plan asks for calls at "reasonable hours" without numbers; no
//     statutory window was found.
//   - +86 170 / 171 (virtual-operator ranges, heavily used in fraud) are
//     held for review, not blocked: most are real subscribers, and a wrong
//     block is the second-worst bug. 162/165/167 are also MVNO ranges; add
//     them if the tenant's risk team wants.
//   - Caller ID: only owned numbers (e.g. the enterprise's 400/95 ranges).
func presetCN() Policy {
	return Policy{
		ID: "preset-cn", Version: 1, Name: "China (seed rules, conservative defaults)",
		ConsentRequired: []controller.Purpose{controller.PurposeMarketing},
		RefusalLockDays: 90,
		DailyCap:        15,
		Hours:           daily("09:00", "20:00"),
		SuspiciousRanges: []RangeRule{
			{Prefix: "+86170", Action: ActionReview},
			{Prefix: "+86171", Action: ActionReview},
		},
		CallerIDOwnedOnly:     true,
		ForbiddenPhrases:      []string{"免费", "保证", "稳赚", "法律诉讼", "起诉", "逮捕", "最后通知"},
		EvidenceRetentionDays: 730,
		MediaSecurity:         secureMedia(),
	}
}

// presetUS: United States (TCPA, FCC 47 CFR 64.1200; FTC TSR, 16 CFR 310).
//   - Hours 08:00–21:00 in the called party's local time: 47 CFR
//     64.1200(c)(1), 16 CFR 310.4(c).
//   - National DNC registry scrubbed within 31 days: 16 CFR
//     310.4(b)(3)(iv); a national list is required.
//   - Consent for marketing: prior express written consent for telemarketing
//     with an autodialer or prerecorded voice, which is how callgate calls
//     (47 CFR 64.1200(a)(2)-(3)).
//   - Refusal lock forever: the TSR's entity-specific do-not-call request has
//     no end (16 CFR 310.4(b)(1)(iii)(A)); the FCC's is 5 years. The longer wins.
//   - Florida (US-FL, by area code; Florida presumes its area codes reach
//     residents): 08:00–20:00 and at most 3 calls per 24 h, Fla. Stat.
//     501.616(6)(a)-(b) as amended in 2021. The statute counts per subject
//     matter; the gate counts all attempts, which is stricter.
//   - Daily cap 15: the product default, no federal number.
//   - Abandoned calls ≤ 3 % per campaign per 30 days (16 CFR
//     310.4(b)(4)(i), 47 CFR 64.1200(a)(7)(i)): recorded for the dialer.
//   - Evidence kept 5 years (TSR record keeping, 16 CFR 310.5 as amended in
//     2024; also beyond the TCPA's 4-year limitation period).
func presetUS() Policy {
	return Policy{
		ID: "preset-us", Version: 1, Name: "United States (TCPA/TSR, Florida FTSA)",
		ConsentRequired: []controller.Purpose{controller.PurposeMarketing},
		RefusalLockDays: RefusalForever,
		DailyCap:        15,
		Hours:           daily("08:00", "21:00"),
		RegionHours:     map[string][]HoursWindow{"US-FL": daily("08:00", "20:00")},
		RegionCaps: map[string]RegionCap{
			"US-FL": {Windows: []CapWindow{{Count: 3, Period: Duration(24 * time.Hour)}}},
		},
		NationalScrubMaxAgeDays: 31,
		RequiredDNCKinds:        []string{KindNational},
		CallerIDOwnedOnly:       true,
		ForbiddenPhrases:        []string{"free", "risk-free", "guaranteed", "legal action", "lawsuit", "arrest", "warrant", "final notice"},
		EvidenceRetentionDays:   1826,
		MaxAbandonPercent:       3,
		AbandonWindow:           days(30),
		MediaSecurity:           secureMedia(),
	}
}

// presetUK: United Kingdom (PECR 2003, enforced by the ICO; Ofcom's
// persistent-misuse policy, 2016 statement).
//   - Hours Mon–Sat 09:00–20:00, no Sundays: a conservative default. Neither
//     PECR nor Ofcom sets calling hours; this is narrower than the 08:00–21:00
//     industry practice.
//   - TPS (the national list) honoured 28 days after registration, PECR reg.
//     21(3): the national list must be scrubbed within 28 days.
//   - Consent for marketing: automated (recorded) marketing calls need prior
//     consent, PECR reg. 19.
//   - Refusal lock forever: an objection stands "for the time being", with
//     no end, PECR reg. 21(1)(a).
//   - Caller ID: a contactable, owned CLI (PECR reg. 21(A1); Ofcom CLI
//     guidance).
//   - Abandoned calls ≤ 3 % per campaign per 24 h (Ofcom, annex 3 of the
//     statement); recorded for the dialer.
//   - Daily cap 15 and evidence kept ≥ 2 years: the product defaults.
func presetUK() Policy {
	return Policy{
		ID: "preset-uk", Version: 1, Name: "United Kingdom (PECR/TPS, Ofcom; conservative hours)",
		ConsentRequired: []controller.Purpose{controller.PurposeMarketing},
		RefusalLockDays: RefusalForever,
		DailyCap:        15,
		Hours: []HoursWindow{{
			Days: []string{"mon", "tue", "wed", "thu", "fri", "sat"}, Start: "09:00", End: "20:00",
		}},
		NationalScrubMaxAgeDays: 28,
		RequiredDNCKinds:        []string{KindNational},
		CallerIDOwnedOnly:       true,
		ForbiddenPhrases:        []string{"free", "risk-free", "guaranteed", "legal action", "lawsuit", "arrest", "warrant", "final notice"},
		EvidenceRetentionDays:   730,
		MaxAbandonPercent:       3,
		AbandonWindow:           Duration(24 * time.Hour),
		MediaSecurity:           secureMedia(),
	}
}
