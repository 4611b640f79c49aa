package compliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// Policy is the data the rules enforce: one versioned document per tenant or
// campaign. Presets (see Preset) are starting points; a policy is edited as
// data, never as code. The zero Policy is invalid on purpose (no calling
// hours, no refusal lock): Validate rejects it.
type Policy struct {
	ID      string `json:"id"`      // stable identifier, stored on every decision
	Version int    `json:"version"` // ≥ 1; bump on every edit, stored on every decision
	Name    string `json:"name,omitempty"`

	// ConsentRequired lists the purposes that need a valid (not expired, not
	// revoked) consent in the ledger before a call.
	ConsentRequired []controller.Purpose `json:"consent_required,omitempty"`

	// RefusalLockDays is how long a refusal locks a number: ≥ 1 days, or -1
	// for forever. 0 is invalid so that a missing field never means "no lock".
	// The lock's end is written on the refusal when it is recorded
	// (RefusalUntil); the refusal rule enforces the stored lock.
	RefusalLockDays int `json:"refusal_lock_days"`

	// DailyCap is the maximum number of attempts per number per calendar day
	// in the callee's time zone, across all tenants and campaigns; 0 = no cap.
	DailyCap int `json:"daily_cap"`
	// Windows are rolling caps (e.g. 3 per 24h), all enforced.
	Windows []CapWindow `json:"windows,omitempty"`

	// Hours are the calling windows in the callee's local time. At least one
	// is required; use 00:00–24:00 on every day for "any time".
	Hours []HoursWindow `json:"hours"`
	// RegionHours replace Hours for numbers of a region: a subdivision key
	// ("US-FL") wins over a country key ("US").
	RegionHours map[string][]HoursWindow `json:"region_hours,omitempty"`
	// RegionCaps add caps for numbers of a region (country and subdivision
	// caps both apply, on top of DailyCap and Windows).
	RegionCaps map[string]RegionCap `json:"region_caps,omitempty"`
	// Holidays lists local dates ("2026-12-25") with no calls, keyed by
	// country ("US") or subdivision ("US-FL"); both keys apply to a number.
	Holidays map[string][]string `json:"holidays,omitempty"`

	// NationalScrubMaxAgeDays blocks (dnc_scrub_stale) when a list of kind
	// "national" was last scrubbed longer ago than this, or never; 0 = no
	// age requirement.
	NationalScrubMaxAgeDays int `json:"national_scrub_max_age_days,omitempty"`
	// RequiredDNCKinds are list kinds (internal | national | other) the
	// tenant must have; a missing one blocks with dnc_scrub_stale.
	RequiredDNCKinds []string `json:"required_dnc_kinds,omitempty"`

	// SuspiciousRanges flag callee numbers by E.164 prefix.
	SuspiciousRanges []RangeRule `json:"suspicious_ranges,omitempty"`
	// CallerIDOwnedOnly requires the presented caller ID to be a number the
	// tenant registered as its own.
	CallerIDOwnedOnly bool `json:"caller_id_owned_only"`

	// EvidenceRetentionDays is the minimum time consent and authorisation
	// evidence is kept (the purge jobs read it; the gate does not).
	EvidenceRetentionDays int `json:"evidence_retention_days"`
	// RecordingRetentionDays is how long call recordings are kept before
	// they are crypto-shredded; 0 means 365.
	RecordingRetentionDays int `json:"recording_retention_days,omitempty"`

	// ForbiddenPhrases may not appear in any prompt a flow plays (matched
	// case-insensitively on word boundaries): claims and threats the
	// regulator forbids, such as "free" or "legal action".
	ForbiddenPhrases []string `json:"forbidden_phrases,omitempty"`

	// ZoneOverrides replace the time zones libphonenumber gives numbers under
	// an E.164 prefix ("+1689" → ["America/New_York"]); the longest prefix wins.
	ZoneOverrides map[string][]string `json:"zone_overrides,omitempty"`

	// MaxAbandonPercent and AbandonWindow bound abandoned calls per campaign
	// (e.g. 3 % per 30 days). Not enforced by the gate: the predictive
	// dialer's pacing will read them.
	MaxAbandonPercent float64  `json:"max_abandon_percent,omitempty"`
	AbandonWindow     Duration `json:"abandon_window,omitzero"`

	// MediaSecurity is the transport security every call under the policy
	// must have (DESIGN 1.2). The dialer puts it on each originate; a
	// switch that cannot confirm it is not sent the call (media_insecure).
	MediaSecurity MediaSecurity `json:"media_security,omitzero"`
}

// MediaSecurity is what a policy demands of a call's signalling and media.
type MediaSecurity struct {
	// RequireSRTP: media only as SRTP (SDES keys); a far end that refuses
	// SRTP fails the call instead of hearing it in clear. Needs RequireTLS:
	// SDES keys travel in the SDP, so over plain SIP they are public
	// (RFC 4568 section 8.3).
	RequireSRTP bool `json:"require_srtp"`
	// SRTPSuites are the crypto suites offered, most preferred first, from
	// SRTPSuiteNames; required with RequireSRTP, not allowed without it.
	SRTPSuites []string `json:"srtp_suites,omitempty"`
	// RequireTLS: SIP signalling only over TLS.
	RequireTLS bool `json:"require_tls"`
}

// Requirement returns m as the requirement put on an originate.
func (m MediaSecurity) Requirement() controller.MediaRequirement {
	return controller.MediaRequirement{SRTP: m.RequireSRTP, Suites: append([]string(nil), m.SRTPSuites...), TLS: m.RequireTLS}
}

// srtpSuites are the SDES crypto suites a policy may name: those
// FreeSWITCH 1.10 offers (switch_core_media.c), minus AES_CM_128_NULL_AUTH,
// which does not authenticate the media.
var srtpSuites = []string{
	"AEAD_AES_256_GCM_8", "AEAD_AES_256_GCM", "AEAD_AES_128_GCM_8", "AEAD_AES_128_GCM",
	"AES_CM_256_HMAC_SHA1_80", "AES_CM_192_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80",
	"AES_CM_256_HMAC_SHA1_32", "AES_CM_192_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_32",
}

// SRTPSuiteNames returns the SRTP crypto suites a policy may name.
func SRTPSuiteNames() []string { return append([]string(nil), srtpSuites...) }

// validate returns an EINVALID error naming the media_security field at fault.
func (m MediaSecurity) validate() error {
	if m.RequireSRTP && !m.RequireTLS {
		return controller.FieldError("media_security.require_tls", "must be true when require_srtp is: SDES keys over plain SIP are readable by anyone on the path")
	}
	if m.RequireSRTP && len(m.SRTPSuites) == 0 {
		return controller.FieldError("media_security.srtp_suites", "at least one suite is required with require_srtp (one of %s)", strings.Join(srtpSuites, ", "))
	}
	if !m.RequireSRTP && len(m.SRTPSuites) > 0 {
		return controller.FieldError("media_security.srtp_suites", "only allowed with require_srtp: true")
	}
	seen := map[string]bool{}
	for i, suite := range m.SRTPSuites {
		field := fmt.Sprintf("media_security.srtp_suites[%d]", i)
		if !slices.Contains(srtpSuites, suite) {
			return controller.FieldError(field, "unknown SRTP suite %q (use one of %s)", suite, strings.Join(srtpSuites, ", "))
		}
		if seen[suite] {
			return controller.FieldError(field, "%s is listed twice", suite)
		}
		seen[suite] = true
	}
	return nil
}

// RecordingRetention is how long the policy keeps recordings.
func (p Policy) RecordingRetention() time.Duration {
	if p.RecordingRetentionDays <= 0 {
		return 365 * 24 * time.Hour
	}
	return time.Duration(p.RecordingRetentionDays) * 24 * time.Hour
}

// CapWindow is a rolling cap: at most Count attempts in any Period.
type CapWindow struct {
	Count  int      `json:"count"`
	Period Duration `json:"period"`
}

// RegionCap holds the extra caps of a region.
type RegionCap struct {
	DailyCap int         `json:"daily_cap,omitempty"`
	Windows  []CapWindow `json:"windows,omitempty"`
}

// HoursWindow allows calls on Days from Start (inclusive) to End
// (exclusive), local wall-clock time. Days are "mon".."sun"; Start and End
// are "HH:MM", End may be "24:00"; windows do not cross midnight.
type HoursWindow struct {
	Days  []string `json:"days"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

// Actions of a RangeRule.
const (
	ActionBlock  = "block"  // the call is blocked
	ActionReview = "review" // the call waits for a human review
)

// RangeRule flags numbers starting with Prefix (E.164, e.g. "+86170").
type RangeRule struct {
	Prefix string `json:"prefix"`
	Action string `json:"action"` // block | review
}

// DNC list kinds (controller.DNCList.Kind).
const (
	KindInternal = "internal"
	KindNational = "national"
	KindOther    = "other"
)

// RefusalForever is the RefusalLockDays value of a lock without end.
const RefusalForever = -1

// RefusalUntil returns when a refusal recorded at at ends under p, or nil
// for a lock without end.
func (p Policy) RefusalUntil(at time.Time) *time.Time {
	if p.RefusalLockDays < 0 {
		return nil
	}
	until := at.AddDate(0, 0, p.RefusalLockDays)
	return &until
}

// Duration is a time.Duration that reads and writes JSON as a string:
// "24h", "90m", or whole days as "3d".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string ("24h0m0s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "24h", "1h30m" or "3d". Returns an error for any other
// value, including bare numbers (whose unit would be ambiguous).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"24h\" or \"3d\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration or a whole number of days ("3d").
// Returns an error naming the value when it is neither.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3660 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return v, nil
}

var (
	regionKeyRE = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
	prefixRE    = regexp.MustCompile(`^\+[1-9][0-9]{0,14}$`)
)

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Validate checks every field. Returns an EINVALID *controller.Error whose
// Field names the first bad field (e.g. "hours[0].start").
func (p Policy) Validate() error {
	if p.ID == "" {
		return controller.FieldError("id", "is required")
	}
	if err := controller.CheckText("id", p.ID); err != nil {
		return err
	}
	if p.Version < 1 {
		return controller.FieldError("version", "must be ≥ 1")
	}
	for i, pu := range p.ConsentRequired {
		switch pu {
		case controller.PurposeMarketing, controller.PurposeService, controller.PurposeTransactional:
		default:
			return controller.FieldError(fmt.Sprintf("consent_required[%d]", i), "unknown purpose %q", pu)
		}
	}
	if p.RefusalLockDays != RefusalForever && (p.RefusalLockDays < 1 || p.RefusalLockDays > 36600) {
		return controller.FieldError("refusal_lock_days", "must be 1..36600 days, or -1 for forever")
	}
	if p.DailyCap < 0 {
		return controller.FieldError("daily_cap", "must be ≥ 0 (0 = no cap)")
	}
	if err := validateWindows("windows", p.Windows); err != nil {
		return err
	}
	if len(p.Hours) == 0 {
		return controller.FieldError("hours", "at least one window is required (00:00–24:00 on every day for any time)")
	}
	if err := validateHours("hours", p.Hours); err != nil {
		return err
	}
	for key, ws := range p.RegionHours {
		field := "region_hours." + key
		if !regionKeyRE.MatchString(key) {
			return controller.FieldError(field, "region must look like \"US\" or \"US-FL\"")
		}
		if len(ws) == 0 {
			return controller.FieldError(field, "at least one window is required")
		}
		if err := validateHours(field, ws); err != nil {
			return err
		}
	}
	for key, rc := range p.RegionCaps {
		field := "region_caps." + key
		if !regionKeyRE.MatchString(key) {
			return controller.FieldError(field, "region must look like \"US\" or \"US-FL\"")
		}
		if rc.DailyCap < 0 {
			return controller.FieldError(field+".daily_cap", "must be ≥ 0")
		}
		if err := validateWindows(field+".windows", rc.Windows); err != nil {
			return err
		}
	}
	for key, dates := range p.Holidays {
		field := "holidays." + key
		if !regionKeyRE.MatchString(key) {
			return controller.FieldError(field, "region must look like \"US\" or \"US-FL\"")
		}
		for i, d := range dates {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return controller.FieldError(fmt.Sprintf("%s[%d]", field, i), "must be a date YYYY-MM-DD")
			}
		}
	}
	if p.NationalScrubMaxAgeDays < 0 {
		return controller.FieldError("national_scrub_max_age_days", "must be ≥ 0 (0 = no requirement)")
	}
	for i, k := range p.RequiredDNCKinds {
		if k != KindInternal && k != KindNational && k != KindOther {
			return controller.FieldError(fmt.Sprintf("required_dnc_kinds[%d]", i), "must be internal, national or other")
		}
	}
	for i, r := range p.SuspiciousRanges {
		field := fmt.Sprintf("suspicious_ranges[%d]", i)
		if !prefixRE.MatchString(r.Prefix) {
			return controller.FieldError(field+".prefix", "must be an E.164 prefix such as +86170")
		}
		if r.Action != ActionBlock && r.Action != ActionReview {
			return controller.FieldError(field+".action", "must be block or review")
		}
	}
	if p.EvidenceRetentionDays < 0 {
		return controller.FieldError("evidence_retention_days", "must be ≥ 0")
	}
	if p.RecordingRetentionDays < 0 {
		return controller.FieldError("recording_retention_days", "must be ≥ 0")
	}
	for i, f := range p.ForbiddenPhrases {
		if strings.TrimSpace(f) == "" || len(f) > 100 {
			return controller.FieldError(fmt.Sprintf("forbidden_phrases[%d]", i), "must be 1 to 100 characters")
		}
	}
	for prefix, zones := range p.ZoneOverrides {
		field := "zone_overrides." + prefix
		if !prefixRE.MatchString(prefix) {
			return controller.FieldError(field, "must be an E.164 prefix such as +1689")
		}
		if len(zones) == 0 {
			return controller.FieldError(field, "at least one time zone is required")
		}
		for _, z := range zones {
			if _, err := loadZone(z); err != nil {
				return controller.FieldError(field, "unknown time zone %q", z)
			}
		}
	}
	if p.MaxAbandonPercent < 0 || p.MaxAbandonPercent > 100 {
		return controller.FieldError("max_abandon_percent", "must be 0..100")
	}
	if p.AbandonWindow < 0 {
		return controller.FieldError("abandon_window", "must be ≥ 0")
	}
	if err := p.MediaSecurity.validate(); err != nil {
		return err
	}
	return nil
}

func validateWindows(field string, ws []CapWindow) error {
	for i, w := range ws {
		f := fmt.Sprintf("%s[%d]", field, i)
		if w.Count < 1 {
			return controller.FieldError(f+".count", "must be ≥ 1")
		}
		if w.Period <= 0 || time.Duration(w.Period) > 366*24*time.Hour {
			return controller.FieldError(f+".period", "must be more than 0 and at most 366 days")
		}
	}
	return nil
}

func validateHours(field string, ws []HoursWindow) error {
	for i, w := range ws {
		if _, err := parseHoursWindow(w); err != nil {
			var e *controller.Error
			if errors.As(err, &e) {
				e.Field = fmt.Sprintf("%s[%d].%s", field, i, e.Field)
			}
			return err
		}
	}
	return nil
}

// window is a parsed HoursWindow: the allowed weekdays and the seconds of
// the local day [start, end).
type window struct {
	days       [7]bool
	start, end int
}

func (w window) contains(local time.Time) bool {
	if !w.days[local.Weekday()] {
		return false
	}
	s := local.Hour()*3600 + local.Minute()*60 + local.Second()
	return s >= w.start && s < w.end
}

// parseHoursWindow returns the parsed window, or an EINVALID error whose
// Field is the window's bad member (days, start or end).
func parseHoursWindow(w HoursWindow) (window, error) {
	var out window
	if len(w.Days) == 0 {
		return out, controller.FieldError("days", "at least one of mon..sun is required")
	}
	for _, d := range w.Days {
		wd, ok := weekdays[d]
		if !ok {
			return out, controller.FieldError("days", "unknown day %q (use mon..sun)", d)
		}
		out.days[wd] = true
	}
	var err error
	if out.start, err = parseClock(w.Start, false); err != nil {
		return out, controller.FieldError("start", "%v", err)
	}
	if out.end, err = parseClock(w.End, true); err != nil {
		return out, controller.FieldError("end", "%v", err)
	}
	if out.start >= out.end {
		return out, controller.FieldError("end", "must be after start (windows do not cross midnight)")
	}
	return out, nil
}

// parseClock returns the seconds since midnight of "HH:MM"; "24:00" only
// when allow24.
func parseClock(s string, allow24 bool) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("must be HH:MM")
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	switch {
	case err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59:
		return 0, fmt.Errorf("must be HH:MM")
	case h == 24 && m == 0 && allow24:
		return 24 * 3600, nil
	case h > 23:
		return 0, fmt.Errorf("hour must be 00..23")
	}
	return h*3600 + m*60, nil
}

func parseHours(ws []HoursWindow) ([]window, error) {
	out := make([]window, 0, len(ws))
	for _, w := range ws {
		pw, err := parseHoursWindow(w)
		if err != nil {
			return nil, err
		}
		out = append(out, pw)
	}
	return out, nil
}

// hoursFor returns the windows that govern n and the key they came from
// ("US-FL", "US" or "default").
func (p Policy) hoursFor(n Number) ([]HoursWindow, string) {
	if n.Subdivision != "" {
		if ws, ok := p.RegionHours[n.Subdivision]; ok {
			return ws, n.Subdivision
		}
	}
	if ws, ok := p.RegionHours[n.Region]; ok {
		return ws, n.Region
	}
	return p.Hours, "default"
}

// regionKeys returns the keys under which region data applies to n: its
// country, then its subdivision when known.
func regionKeys(n Number) []string {
	if n.Subdivision != "" {
		return []string{n.Region, n.Subdivision}
	}
	return []string{n.Region}
}

func formatWindows(ws []HoursWindow) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s %s-%s", strings.Join(w.Days, ","), w.Start, w.End))
	}
	return strings.Join(parts, "; ")
}
