package compliance

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/callgate/callgate/controller"
	"github.com/nyaruka/phonenumbers"
)

// Number is a callee number after normalisation.
type Number struct {
	E164        string                    // "+12125551234"
	Region      string                    // ISO 3166-1 alpha-2 ("US"), "001" for non-geographic numbers
	Subdivision string                    // "US-FL" when derived (US numbers only), else ""
	Zones       []string                  // IANA time zones; empty or "Etc/Unknown" when unknown
	Phone       *phonenumbers.PhoneNumber // the parsed number
}

// maxNumberInput bounds what ParseNumber reads: E.164 has at most 15
// digits, so anything much longer is not a number worth parsing.
const maxNumberInput = 64

// ParseNumber normalises raw to E.164 with libphonenumber. defaultRegion
// (ISO 3166-1 alpha-2, e.g. "US") is used when raw has no leading "+";
// without it raw must start with "+". Numbers with an extension are
// rejected (E.164 cannot carry one). Returns an EINVALID *controller.Error
// on field "to" that never holds the full number when raw is not a valid
// number; it never panics.
//
// Successful results are cached (a call's number is parsed when it is
// created and at both gate stages): the Number returned is shared and must
// be treated as read-only.
func ParseNumber(raw, defaultRegion string) (Number, error) {
	key := defaultRegion + "|" + raw
	parsed.mu.Lock()
	n, ok := parsed.m[key]
	parsed.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := parseNumber(raw, defaultRegion)
	if err == nil {
		parsed.mu.Lock()
		if len(parsed.m) >= parsedMax {
			parsed.m = make(map[string]Number) // crude but bounded
		}
		parsed.m[key] = n
		parsed.mu.Unlock()
	}
	return n, err
}

// parsed caches successful parses; parsedMax bounds its memory (about
// 300 bytes an entry).
var parsed = struct {
	mu sync.Mutex
	m  map[string]Number
}{m: make(map[string]Number)}

const parsedMax = 100_000

func parseNumber(raw, defaultRegion string) (Number, error) {
	pn, err := parsePhone(raw, defaultRegion)
	if err != nil {
		return Number{}, err
	}
	e164 := phonenumbers.Format(pn, phonenumbers.E164)
	n := Number{
		E164:   e164,
		Region: phonenumbers.GetRegionCodeForNumber(pn),
		Phone:  pn,
	}
	n.Zones = numberZones(pn, e164)
	n.Subdivision = subdivision(pn, n.Region)
	return n, nil
}

// numberTypes names libphonenumber's number types as controller.NumberTypes
// spells them.
var numberTypes = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE: "fixed_line", phonenumbers.MOBILE: "mobile",
	phonenumbers.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile", phonenumbers.TOLL_FREE: "toll_free",
	phonenumbers.PREMIUM_RATE: "premium_rate", phonenumbers.SHARED_COST: "shared_cost", phonenumbers.VOIP: "voip",
	phonenumbers.PERSONAL_NUMBER: "personal_number", phonenumbers.PAGER: "pager", phonenumbers.UAN: "uan",
	phonenumbers.VOICEMAIL: "voicemail",
}

// NumberType returns the kind of number n is, as libphonenumber classifies
// it: one of controller.NumberTypes ("mobile", "fixed_line", "toll_free",
// "voip"…; "fixed_line_or_mobile" where the numbering plan cannot tell,
// as in North America; "unknown" for a number without a parsed Phone).
func NumberType(n Number) string {
	if n.Phone == nil {
		return "unknown"
	}
	if t, ok := numberTypes[phonenumbers.GetNumberType(n.Phone)]; ok {
		return t
	}
	return "unknown"
}

// NormalizeNumber is ParseNumber for bulk input (lead lists): it returns
// only the E.164 form, with the same checks and errors, without time zones,
// subdivision or cache.
func NormalizeNumber(raw, defaultRegion string) (string, error) {
	if pn, ok := nanpE164(raw); ok && isValid(pn) {
		return raw, nil // already E.164, and valid
	}
	pn, err := parsePhone(raw, defaultRegion)
	if err != nil {
		return "", err
	}
	return phonenumbers.Format(pn, phonenumbers.E164), nil
}

// parsePhone parses and checks raw; it never panics.
func parsePhone(raw, defaultRegion string) (pn *phonenumbers.PhoneNumber, err error) {
	defer func() {
		if r := recover(); r != nil { // a library bug must not take the gate down
			pn, err = nil, controller.FieldError("to", "number %s could not be parsed", controller.MaskNumber(raw))
		}
	}()
	s := strings.TrimSpace(raw)
	masked := controller.MaskNumber(s)
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	switch {
	case s == "":
		return nil, controller.FieldError("to", "number is empty")
	case len(s) > maxNumberInput:
		return nil, controller.FieldError("to", "number is longer than %d characters", maxNumberInput)
	case !strings.HasPrefix(s, "+") && region == "":
		return nil, controller.FieldError("to", "number %s has no country code: give it in E.164 (+…) or set the region", masked)
	case region != "" && !phonenumbers.GetSupportedRegions()[region]:
		return nil, controller.FieldError("region", "unknown region %q", region)
	}
	pn, perr := phonenumbers.Parse(s, region)
	if perr != nil {
		return nil, controller.FieldError("to", "number %s is not a phone number: %v", masked, perr)
	}
	if pn.GetExtension() != "" {
		return nil, controller.FieldError("to", "number %s has an extension, which cannot be dialled as E.164", masked)
	}
	if !isValid(pn) {
		return nil, controller.FieldError("to", "number %s is not a valid number (region %s)", masked, regionOr(region))
	}
	return pn, nil
}

func regionOr(r string) string {
	if r == "" {
		return "from +"
	}
	return r
}

// SuspiciousRangeRule flags numbers in the policy's SuspiciousRanges: a
// "block" range blocks, a "review" range holds the call for a human review
// (Verdict.Review, which also keeps it from being dialled). The most severe
// matching range wins; every matching prefix is in the evidence.
type SuspiciousRangeRule struct{}

// Name returns "number_range".
func (SuspiciousRangeRule) Name() string { return "number_range" }

// Check never returns an error.
func (r SuspiciousRangeRule) Check(_ context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	action := ""
	for _, rr := range in.Policy.SuspiciousRanges {
		if !strings.HasPrefix(in.Number.E164, rr.Prefix) {
			continue
		}
		v.Evidence = append(v.Evidence, "range:"+rr.Prefix)
		if action != ActionBlock {
			action = rr.Action
		}
	}
	switch action {
	case ActionBlock:
		v.Allow, v.Reason = false, controller.ReasonNumberSuspicious
		v.Detail = fmt.Sprintf("number is in a blocked range (%s)", strings.Join(v.Evidence, ", "))
	case ActionReview:
		v.Allow, v.Review, v.Reason = false, true, controller.ReasonNumberSuspicious
		v.Detail = fmt.Sprintf("number is in a range that needs a review before calling (%s)", strings.Join(v.Evidence, ", "))
	}
	return v, nil
}

// NumberLookup is the hook for an HLR or reassigned-numbers database.
type NumberLookup interface {
	// Reassigned reports whether e164 was disconnected and given to someone
	// else since consent or the lead was collected. An error blocks the call
	// (rule_error): an implementation that prefers to allow when its
	// provider is down must decide that itself and return false, nil.
	Reassigned(ctx context.Context, e164 string) (bool, error)
}

// NoopNumberLookup never reports a number as reassigned.
type NoopNumberLookup struct{}

// Reassigned returns false, nil.
func (NoopNumberLookup) Reassigned(context.Context, string) (bool, error) { return false, nil }

// ReassignedRule blocks numbers the NumberLookup reports as reassigned.
type ReassignedRule struct {
	Lookup NumberLookup // nil means NoopNumberLookup
}

// Name returns "number_reassigned".
func (ReassignedRule) Name() string { return "number_reassigned" }

// Check returns the lookup's error, wrapped, when it fails.
func (r ReassignedRule) Check(ctx context.Context, in *Input) (controller.Verdict, error) {
	v := controller.Verdict{Rule: r.Name(), Allow: true}
	if r.Lookup == nil {
		return v, nil
	}
	re, err := r.Lookup.Reassigned(ctx, in.Number.E164)
	if err != nil {
		return v, fmt.Errorf("looking up reassignment: %w", err)
	}
	if re {
		v.Allow, v.Reason = false, controller.ReasonNumberReassigned
		v.Detail = "number was reassigned to another subscriber"
	}
	return v, nil
}
