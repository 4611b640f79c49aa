package compliance

import (
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// regionsWithLeadingDigits lists the regions whose metadata names leading
// digits: for them the library picks a region by those digits alone, so a
// number's validity must still be checked against the region.
var regionsWithLeadingDigits = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil || coll == nil {
		return nil // isValid then always takes the library's full path
	}
	for _, m := range coll.GetMetadata() {
		if m.GetLeadingDigits() != "" {
			out[m.GetId()] = true
		}
	}
	return out
})

// isValid is phonenumbers.IsValidNumber without its second pass. For a
// calling code shared by several regions (+1 has 25), the library finds
// the region by running the number against each region's number types
// until one matches, then IsValidNumberForRegion runs the same match again
// for that region. When the region was chosen that way (not by leading
// digits) the second run cannot answer differently, and it costs as much
// as the first: it is skipped. Otherwise the library's answer is used.
func isValid(pn *phonenumbers.PhoneNumber) bool {
	lead := regionsWithLeadingDigits()
	if lead == nil || len(phonenumbers.GetRegionCodesForCountryCode(int(pn.GetCountryCode()))) < 2 {
		return phonenumbers.IsValidNumber(pn)
	}
	region := phonenumbers.GetRegionCodeForNumber(pn)
	if region == "" {
		return false
	}
	if !lead[region] {
		return true
	}
	return phonenumbers.IsValidNumberForRegion(pn, region)
}

// nanpE164 parses "+1" and ten digits, the form most lead lists hold,
// without the library's general parser: the national number is the ten
// digits as they stand (an area code starts with 2-9, so there is no
// national prefix to strip nor leading zero to keep). ok is false for
// anything else.
func nanpE164(s string) (*phonenumbers.PhoneNumber, bool) {
	if len(s) != 12 || s[0] != '+' || s[1] != '1' || s[2] < '2' {
		return nil, false
	}
	var nn uint64
	for i := 2; i < 12; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return nil, false
		}
		nn = nn*10 + uint64(c-'0')
	}
	cc := int32(1)
	return &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &nn}, true
}

// KnownRegion reports whether region (ISO 3166-1 alpha-2, any case) is a
// region the number library knows.
func KnownRegion(region string) bool {
	return phonenumbers.GetSupportedRegions()[strings.ToUpper(strings.TrimSpace(region))]
}
