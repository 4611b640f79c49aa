package compliance

import (
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones load the same everywhere, even without /usr/share/zoneinfo

	"github.com/nyaruka/phonenumbers"
)

// zoneCorrections replace libphonenumber's time zones under an E.164 prefix
// where its data is known to be wrong. Each entry was checked against
// nyaruka/phonenumbers v1.8.1 (libphonenumber metadata 9.0.x):
//
//   - +1 689 is an overlay of 407/321 (Orlando, Florida: Eastern time, per
//     NANPA's area code records) but every +1689 number maps to
//     America/Chicago, which would let a call through at 20:30 Central =
//     21:30 Eastern.
//
// Policies can add their own with Policy.ZoneOverrides.
var zoneCorrections = map[string][]string{
	"+1689": {"America/New_York"},
}

// numberZones returns the time zones of a parsed number: libphonenumber's,
// unless a correction covers it. The result may be empty or hold
// phonenumbers.UNKNOWN_TIMEZONE.
func numberZones(pn *phonenumbers.PhoneNumber, e164 string) []string {
	if zs, ok := longestPrefix(zoneCorrections, e164); ok {
		return zs
	}
	zs, err := phonenumbers.GetTimezonesForNumber(pn)
	if err != nil {
		return nil
	}
	return zs
}

// withOverrides returns n with its zones replaced by the policy's
// ZoneOverrides when one of their prefixes matches.
func withOverrides(n Number, overrides map[string][]string) Number {
	if zs, ok := longestPrefix(overrides, n.E164); ok {
		n.Zones = zs
	}
	return n
}

func longestPrefix(m map[string][]string, e164 string) ([]string, bool) {
	var best string
	var found []string
	for p, zs := range m {
		if strings.HasPrefix(e164, p) && len(p) > len(best) {
			best, found = p, zs
		}
	}
	return found, best != ""
}

var zoneCache sync.Map // IANA name → *time.Location

// loadZone returns the location of an IANA zone name, cached. Returns an
// error for an unknown name, for "Etc/Unknown" and for "".
func loadZone(name string) (*time.Location, error) {
	if l, ok := zoneCache.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || name == phonenumbers.UNKNOWN_TIMEZONE {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("loading time zone %q: %w", name, err)
	}
	zoneCache.Store(name, l)
	return l, nil
}

// errZoneUnknown means a number's zones are not all known: rules that need
// local time block with zone_unknown.
type errZoneUnknown struct{ detail string }

func (e errZoneUnknown) Error() string { return e.detail }

// calleeLocations returns the zones the callee of in may be in: its
// number's, plus the request's CalleeZone. With a CalleeZone, a number
// without known zones is placed by it alone. Returns errZoneUnknown as
// locations does, and for a CalleeZone that cannot be loaded.
func calleeLocations(in *Input) ([]*time.Location, error) {
	z := in.Req.CalleeZone
	if z == "" {
		return locations(in.Number)
	}
	extra, err := loadZone(z)
	if err != nil || z == "Local" {
		return nil, errZoneUnknown{fmt.Sprintf("the callee's time zone %q is unknown", z)}
	}
	locs, err := locations(in.Number)
	if err != nil {
		return []*time.Location{extra}, nil
	}
	for _, l := range locs {
		if l.String() == extra.String() {
			return locs, nil
		}
	}
	return append(locs, extra), nil
}

// locations returns the loaded zones of n. Returns errZoneUnknown when n has
// no zone, or any zone is "Etc/Unknown" or cannot be loaded: a number we
// cannot place in time is not called.
func locations(n Number) ([]*time.Location, error) {
	if len(n.Zones) == 0 {
		return nil, errZoneUnknown{fmt.Sprintf("no time zone is known for the number's range (region %s)", n.Region)}
	}
	out := make([]*time.Location, 0, len(n.Zones))
	for _, z := range n.Zones {
		l, err := loadZone(z)
		if err != nil {
			return nil, errZoneUnknown{fmt.Sprintf("time zone of the number's range is unknown (%s, region %s)", z, n.Region)}
		}
		out = append(out, l)
	}
	return out, nil
}

// floridaAreaCodes are Florida's NANP area codes (NANPA / Florida PSC,
// including the overlays 324, 448, 645, 656, 689 and 728). Florida presumes
// a call to one of its area codes reaches a Florida resident (Fla. Stat.
// 501.059, 2021 amendment), so the area code, not the subscriber's current
// address, is the legal test. Used together with the offline geocoder so a
// gap in either still yields US-FL.
var floridaAreaCodes = map[string]bool{
	"239": true, "305": true, "321": true, "324": true, "352": true, "386": true,
	"407": true, "448": true, "561": true, "645": true, "656": true, "689": true,
	"727": true, "728": true, "754": true, "772": true, "786": true, "813": true,
	"850": true, "863": true, "904": true, "941": true, "954": true,
}

// usStates maps the names libphonenumber's English geocoder gives US area
// codes to ISO 3166-2 subdivision codes. City-level descriptions
// ("Miami, FL") carry the code after the comma instead.
var usStates = map[string]string{
	"Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
	"Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
	"Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
	"Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
	"Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
	"Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
	"New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
	"Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
	"South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
	"Virginia": "VA", "Washington": "WA", "Washington State": "WA", "West Virginia": "WV",
	"Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC", "District of Columbia": "DC",
}

// subdivision returns "US-XX" for a US number whose state libphonenumber's
// offline geocoder (by area code and exchange) names, or whose area code is
// Florida's; "" when unknown or outside the US. Like the zones, this is the
// number's home area, not where the person is today.
func subdivision(pn *phonenumbers.PhoneNumber, region string) string {
	if region != "US" {
		return ""
	}
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	if len(nsn) == 10 && floridaAreaCodes[nsn[:3]] {
		return "US-FL"
	}
	desc, err := phonenumbers.GetGeocodingForNumber(pn, "en")
	if err != nil || desc == "" {
		return ""
	}
	if code, ok := usStates[desc]; ok {
		return "US-" + code
	}
	if i := strings.LastIndex(desc, ", "); i >= 0 {
		code := desc[i+2:]
		if len(code) == 2 && code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' && code[1] <= 'Z' {
			return "US-" + code
		}
	}
	return ""
}
