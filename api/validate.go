package api

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/callgate/callgate/controller"
)

// The forms of values the API checks itself before a service sees them, so
// that a hostile value (SQL or switch metacharacters, a path, an overlong
// or malformed number) is a 400 naming its field whatever the service
// behind does with it. Each rule is the value's documented form (see
// openapi.yaml); the services still apply their own, narrower checks (a
// number valid in its region, a switch that exists, a variable the
// operator allows).

// maxPhoneInput bounds a phone number as given, separators included.
const maxPhoneInput = 40

// checkPhone returns an EINVALID error naming field unless v has the form
// of a phone number: E.164 (a + and 2 to 15 digits, the first not 0) or a
// national number of 2 to 15 digits, which the service reads in its
// default region. Spaces, '-', '.', '(' and ')' may group the digits.
// Whether the number exists in its numbering plan is the service's to say:
// the API does not know the default region. The message never repeats v.
func checkPhone(field, v string) error {
	bad := controller.FieldError(field,
		"must be a phone number: E.164 (+ and country code, at most 15 digits) or national in the default region")
	if len(v) > maxPhoneInput {
		return bad
	}
	digits, first := 0, byte(0)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			if digits == 0 {
				first = c
			}
			digits++
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return bad
		}
	}
	if digits < 2 || digits > 15 || (strings.HasPrefix(v, "+") && first == '0') {
		return bad
	}
	return nil
}

// callerIDRE is the form of a presented caller ID number: it need not be
// E.164 (controller/dialer takes 3 to 20 digits with an optional +), but
// no country code starts with 0.
var callerIDRE = regexp.MustCompile(`^(\+[1-9][0-9]{2,19}|[0-9]{3,20})$`)

// checkCallerID returns an EINVALID error naming field unless v is 3 to 20
// digits with an optional leading + (then not followed by 0).
func checkCallerID(field, v string) error {
	if !callerIDRE.MatchString(v) {
		return controller.FieldError(field, "must be a caller ID number: 3 to 20 digits with an optional leading + (not followed by 0)")
	}
	return nil
}

// idRE is the form of the identifiers a client chooses (policies,
// do-not-call lists) or names (agents, campaigns in an assignment, consent
// prompts): the stores take at most 200 characters of plain text; the API
// takes these, which can be neither a path nor part of a command.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)

// checkID returns an EINVALID error naming field unless v has idRE's form.
func checkID(field, v string) error {
	if !idRE.MatchString(v) {
		return controller.FieldError(field, "must be 1 to 200 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	return nil
}

// switchNameRE is the form of a switch's name (the drivers check the same).
var switchNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// checkSwitchName returns an EINVALID error naming field unless v is a
// well-formed switch name. Whether such a switch exists is the service's
// to say.
func checkSwitchName(field, v string) error {
	if !switchNameRE.MatchString(v) {
		return controller.FieldError(field, "must be a switch name: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	return nil
}

// checkText returns an EINVALID error naming field unless v is at most max
// bytes of text a switch command cannot misread (controller.CheckText).
func checkText(field, v string, max int) error {
	if len(v) > max {
		return controller.FieldError(field, "must be at most %d bytes", max)
	}
	return controller.CheckText(field, v)
}

// checkOneOf returns an EINVALID error naming field unless v is one of
// allowed.
func checkOneOf(field, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return controller.FieldError(field, "must be one of %s", strings.Join(allowed, ", "))
	}
	return nil
}

// purposes are the values of a purpose member.
var purposes = []string{string(controller.PurposeMarketing), string(controller.PurposeService), string(controller.PurposeTransactional)}

// checkPurpose returns an EINVALID error naming field unless v is empty or
// a purpose.
func checkPurpose(field string, v controller.Purpose) error {
	if v == "" {
		return nil
	}
	return checkOneOf(field, string(v), purposes...)
}

// checkUUID returns an EINVALID error naming field unless v is a UUID, the
// form of call, agent and campaign IDs.
func checkUUID(field, v string) error {
	if !validCallID(v) {
		return controller.FieldError(field, "must be a UUID")
	}
	return nil
}

// digitsRE are the DTMF digits a caller pressed (the drivers gather at
// most 8).
var digitsRE = regexp.MustCompile(`^[0-9*#]{1,8}$`)

// varNameRE is the form of a channel variable's name (controller/dialer
// checks the same, and that the variable is allowed).
var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// cursorRE is the form of an opaque page cursor: at most 256 of the
// characters a URL carries unescaped (RFC 3986 unreserved) and ':'. The
// PostgreSQL store's are URL-safe base64.
var cursorRE = regexp.MustCompile(`^[A-Za-z0-9._~:-]{1,256}$`)

// maxFileName bounds an uploaded file's name.
const maxFileName = 255

// checkFileName returns an EINVALID error naming field unless name is a
// plain file name: at most 255 bytes of UTF-8 without control characters,
// no directory ('/' or '\'), no "..", and no %-escapes.
func checkFileName(field, name string) error {
	bad := controller.FieldError(field, "must be a plain file name: at most %d bytes, without '/', '\\', '..', '%%' or control characters", maxFileName)
	if len(name) > maxFileName || !utf8.ValidString(name) || strings.Contains(name, "..") || strings.ContainsAny(name, `/\%`) {
		return bad
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return bad
		}
	}
	return nil
}

// consentSources and refusalSources are how consent and refusals are
// obtained (the stores accept the same).
var (
	consentSources = []string{"ivr", "sms_link", "api_import", "agent"}
	refusalSources = []string{"ivr", "sms", "agent", "api"}
)

// maxRefBytes bounds free-text references: a consent's proof, a list's
// source.
const maxRefBytes = 2048

// checkConsent checks the form of every member of a consent given: the
// number, purpose and source, the proof's reference, the prompt played
// (an ID, and its version in digits), the digit pressed and the call.
func checkConsent(in controller.Consent) error {
	if err := checkPhone("number", in.Number); err != nil {
		return err
	}
	if err := checkPurpose("purpose", in.Purpose); err != nil {
		return err
	}
	if in.Source != "" {
		if err := checkOneOf("source", in.Source, consentSources...); err != nil {
			return err
		}
	}
	if err := checkText("proof_ref", in.ProofRef, maxRefBytes); err != nil {
		return err
	}
	if in.PromptID != "" {
		if err := checkID("prompt_id", in.PromptID); err != nil {
			return err
		}
	}
	if in.PromptVersion != "" {
		if _, err := wholeNumber("prompt_version", in.PromptVersion, 1, math.MaxInt32); err != nil {
			return err
		}
	}
	if in.Digit != "" && !digitsRE.MatchString(in.Digit) {
		return controller.FieldError("digit", "must be 1 to 8 of 0-9, * and #")
	}
	if in.CallID != "" {
		return checkUUID("call_id", string(in.CallID))
	}
	return nil
}

// dncKinds are the kinds of do-not-call list (the store accepts the same).
var dncKinds = []string{"internal", "national", "other"}

// maxNameBytes bounds a name people give a list.
const maxNameBytes = 200

// checkDNCList checks the form of a new list's members: its ID (absent: a
// new UUID), name, kind and source.
func checkDNCList(l controller.DNCList) error {
	if l.ID != "" {
		if err := checkID("id", l.ID); err != nil {
			return err
		}
	}
	if err := checkText("name", l.Name, maxNameBytes); err != nil {
		return err
	}
	if l.Kind != "" {
		if err := checkOneOf("kind", l.Kind, dncKinds...); err != nil {
			return err
		}
	}
	return checkText("source", l.Source, maxRefBytes)
}
