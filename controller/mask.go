package controller

import (
	"strings"
	"unicode/utf8"
)

// MaskNumber hides all but the last four characters of a phone number:
// "+15551234567" → "****4567". Shorter values are masked whole.
func MaskNumber(n string) string {
	if len(n) <= 4 {
		return "****"
	}
	return "****" + n[len(n)-4:]
}

// unsafeText lists what a user-supplied value may never contain because a
// switch's command syntax gives it meaning (quotes, escapes, variable and
// channel-variable blocks, FreeSWITCH's ${} expansion and :_: separator).
const unsafeText = "'\"\\{}[]<>|^$`"

// CheckText returns an EINVALID error naming field when s holds a control
// character, invalid UTF-8 or a character of unsafeText. Commas and spaces
// are allowed: drivers escape them.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return FieldError(field, "must be valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return FieldError(field, "must not contain control characters")
		}
		if strings.ContainsRune(unsafeText, r) {
			return FieldError(field, "must not contain any of %s", unsafeText)
		}
	}
	if strings.Contains(s, ":_:") {
		return FieldError(field, "must not contain :_:")
	}
	return nil
}
