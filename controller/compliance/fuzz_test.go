package compliance_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/nyaruka/phonenumbers"
)

// FuzzParseNumber feeds arbitrary strings and regions through the number
// normalisation: it never panics, it fails only with an EINVALID error, and
// an accepted number round-trips through E.164 and is valid. Seeds live in
// testdata/fuzz/FuzzParseNumber as well.
func FuzzParseNumber(f *testing.F) {
	for _, s := range [][2]string{
		{nyNumber, ""}, {"(212) 555-1234", "US"}, {"17012345678", "CN"}, {"020 7946 0000", "GB"},
		{"+1 800 FLOWERS", ""}, {"tel:+1-212-555-1234", ""}, {"+1 212 555 1234 ext. 5", ""},
		{"00 44 20 7946 0000", "DE"}, {"+881612345678", ""}, {"", ""}, {"+", "US"}, {"++1", ""},
		{"+٣٣١٢٣٤٥٦٧٨", ""}, {"\x00+1", "US"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		n, err := compliance.ParseNumber(raw, region)
		if err != nil {
			var e *controller.Error
			if !errors.As(err, &e) || e.Code != controller.EINVALID {
				t.Fatalf("ParseNumber(%q, %q) failed with %v, want an EINVALID *controller.Error", raw, region, err)
			}
			return
		}
		if !strings.HasPrefix(n.E164, "+") || n.Phone == nil {
			t.Fatalf("ParseNumber(%q, %q) = %q, not E.164", raw, region, n.E164)
		}
		again, err := compliance.ParseNumber(n.E164, "")
		if err != nil {
			t.Fatalf("accepted %q as %q, which does not parse again: %v", raw, n.E164, err)
		}
		if again.E164 != n.E164 || again.Region != n.Region {
			t.Fatalf("%q → %q (%s) → %q (%s): not stable", raw, n.E164, n.Region, again.E164, again.Region)
		}
		if !phonenumbers.IsValidNumber(again.Phone) {
			t.Fatalf("%q → %q is not valid", raw, n.E164)
		}
	})
}
