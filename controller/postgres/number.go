package postgres

import (
	"strconv"

	"github.com/callgate/callgate/controller"
)

// e164Digits returns the digits of an E.164 number — a '+', then 2 to 15
// digits, the first not 0 — as an integer, and false for anything else. The
// mapping is one to one, so dnc_entries stores numbers as bigints.
func e164Digits(n string) (int64, bool) {
	if len(n) < 3 || len(n) > 16 || n[0] != '+' || n[1] == '0' {
		return 0, false
	}
	var v int64
	for i := 1; i < len(n); i++ {
		c := n[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// digitsE164 is the inverse of e164Digits.
func digitsE164(v int64) string {
	return "+" + strconv.FormatInt(v, 10)
}

// checkE164 returns an EINVALID error naming field unless n is an E.164
// number. The message never repeats the number.
func checkE164(field, n string) error {
	if _, ok := e164Digits(n); !ok {
		return controller.FieldError(field, "must be an E.164 number such as +15551234567")
	}
	return nil
}
