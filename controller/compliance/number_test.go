package compliance_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"
)

func TestParseNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, region string
		e164        string // "" = invalid
		country     string
		sub         string
		zones       []string
	}{
		{nyNumber, "", nyNumber, "US", "US-NY", []string{"America/New_York"}},
		{"(212) 555-1234", "US", nyNumber, "US", "US-NY", []string{"America/New_York"}},
		{"  +1 212-555-1234 ", "", nyNumber, "US", "US-NY", []string{"America/New_York"}},
		{"212 555 1234", "us", nyNumber, "US", "US-NY", []string{"America/New_York"}},
		{phoenixNumber, "", phoenixNumber, "US", "US-AZ", []string{"America/Phoenix"}},
		{denverNumber, "", denverNumber, "US", "US-CO", []string{"America/Denver"}},
		{miamiNumber, "", miamiNumber, "US", "US-FL", []string{"America/New_York"}},
		{panhandleNum, "", panhandleNum, "US", "US-FL", []string{"America/Chicago"}},
		{"+13212345678", "", "+13212345678", "US", "US-FL", []string{"America/New_York"}}, // geocoder says "Florida"
		{orlando689, "", orlando689, "US", "US-FL", []string{"America/New_York"}},         // corrected from Chicago
		{nevadaNumber, "", nevadaNumber, "US", "US-NV", []string{"America/Boise", "America/Los_Angeles"}},
		{satellite, "", satellite, "001", "", []string{"Etc/Unknown"}},
		{"170 1234 5678", "CN", cn170Number, "CN", "", []string{"Asia/Shanghai"}},
		{"020 7946 0000", "GB", ukNumber, "GB", "", []string{"Europe/London"}},
		{"+1 800 FLOWERS", "", "+18003569377", "US", "", nil}, // toll-free: zones of the whole NANP
		{"212 555 1234", "", "", "", "", nil},                 // no + and no region
		{"+1 212 555 123", "", "", "", "", nil},               // too short
		{"+1 212 555 1234 ext. 55", "", "", "", "", nil},      // extension
		{"+1 555 555 1234", "", "", "", "", nil},              // invalid area code
		{"+99912345678", "", "", "", "", nil},                 // unknown country code
		{"hello", "US", "", "", "", nil},
		{"", "US", "", "", "", nil},
		{"+1212555123412125551234121255512341212555123412125551234121255512341", "", "", "", "", nil},
		{"2125551234", "XX", "", "", "", nil}, // unknown region
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.region, func(t *testing.T) {
			t.Parallel()
			n, err := compliance.ParseNumber(tt.raw, tt.region)
			if tt.e164 == "" {
				require.Error(t, err)
				require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
				if digits := strings.Map(keepDigits, tt.raw); len(digits) > 6 {
					require.NotContains(t, err.Error(), digits[:len(digits)-4], "error leaks the number")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.e164, n.E164)
			require.Equal(t, tt.country, n.Region)
			require.Equal(t, tt.sub, n.Subdivision)
			if tt.zones != nil {
				require.Equal(t, tt.zones, n.Zones)
			} else {
				require.Greater(t, len(n.Zones), 5)
			}
			again, err := compliance.ParseNumber(n.E164, "")
			require.NoError(t, err)
			require.Equal(t, n.E164, again.E164)
		})
	}
}

func keepDigits(r rune) rune {
	if r >= '0' && r <= '9' {
		return r
	}
	return -1
}

func TestSuspiciousRangeRule(t *testing.T) {
	t.Parallel()
	cn, ok := compliance.Preset("cn")
	require.True(t, ok)
	blocking := anyTime()
	blocking.SuspiciousRanges = []compliance.RangeRule{
		{Prefix: "+86170", Action: compliance.ActionReview},
		{Prefix: "+861701", Action: compliance.ActionBlock},
	}
	tests := []struct {
		name     string
		number   string
		policy   compliance.Policy
		reason   string
		review   bool
		evidence []string
	}{
		{"CN preset flags 170 for review", cn170Number, cn, controller.ReasonNumberSuspicious, true, []string{"range:+86170"}},
		{"CN preset flags 171 for review", "+8617112345678", cn, controller.ReasonNumberSuspicious, true, []string{"range:+86171"}},
		{"CN preset passes 138", cnNumber, cn, "", false, nil},
		{"block wins over review", cn170Number, blocking, controller.ReasonNumberSuspicious, false, []string{"range:+86170", "range:+861701"}},
		{"no ranges", cn170Number, anyTime(), "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := compliance.SuspiciousRangeRule{}.Check(context.Background(), input(t, tt.number, tt.policy, newFake(), utc(2026, 6, 10, 3, 0, 0)))
			require.NoError(t, err)
			require.Equal(t, tt.reason, v.Reason)
			require.Equal(t, tt.reason == "", v.Allow)
			require.Equal(t, tt.review, v.Review)
			require.Equal(t, tt.evidence, v.Evidence)
		})
	}
}

type fakeHLR struct {
	reassigned map[string]bool
	err        error
}

func (f fakeHLR) Reassigned(_ context.Context, e164 string) (bool, error) {
	return f.reassigned[e164], f.err
}

func TestReassignedRule(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	tests := []struct {
		name    string
		lookup  compliance.NumberLookup
		reason  string
		wantErr bool
	}{
		{"no-op default", nil, "", false},
		{"no-op explicit", compliance.NoopNumberLookup{}, "", false},
		{"reassigned", fakeHLR{reassigned: map[string]bool{nyNumber: true}}, controller.ReasonNumberReassigned, false},
		{"not reassigned", fakeHLR{reassigned: map[string]bool{miamiNumber: true}}, "", false},
		{"lookup fails", fakeHLR{err: errors.New("hlr down")}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := compliance.ReassignedRule{Lookup: tt.lookup}.Check(context.Background(), input(t, nyNumber, anyTime(), newFake(), now))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.reason, v.Reason)
			require.Equal(t, tt.reason == "", v.Allow)
		})
	}
}

func TestCallerIDRule(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	owned := anyTime()
	owned.CallerIDOwnedOnly = true
	tests := []struct {
		name    string
		policy  compliance.Policy
		from    string
		region  string
		reason  string
		wantErr bool
	}{
		{"not required", anyTime(), "+19999999999", "", "", false},
		{"owned", owned, ownedFrom, "", "", false},
		{"owned, national format", owned, "(202) 555-0100", "US", "", false},
		{"not owned", owned, "+12025550199", "", controller.ReasonCallerIDNotOwned, false},
		{"missing", owned, "", "", controller.ReasonCallerIDNotOwned, false},
		{"garbage", owned, "anonymous", "", controller.ReasonCallerIDNotOwned, false},
		{"China 95 service number, owned", owned, "95555", "CN", "", false},
		{"lookup fails", owned, ownedFrom, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			f.owned[tenant+"|"+ownedFrom] = true
			f.owned[tenant+"|+8695555"] = true
			if tt.wantErr {
				f.errs["CallerIDOwned"] = errors.New("db down")
			}
			in := input(t, nyNumber, tt.policy, f, now)
			in.Req.From, in.Req.Region = tt.from, tt.region
			v, err := compliance.CallerIDRule{}.Check(context.Background(), in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.reason, v.Reason, v.Detail)
			require.Equal(t, tt.reason == "", v.Allow)
			require.NotContains(t, v.Detail, "2025550199")
		})
	}
}

// TestLibraryZonesLoad checks that the zones libphonenumber gives example
// numbers of every region load from the embedded tzdata, so a real zone is
// never mistaken for an unknown one (which would block every call to it).
func TestLibraryZonesLoad(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE} {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			n, err := compliance.ParseNumber(phonenumbers.Format(ex, phonenumbers.E164), "")
			if err != nil {
				continue // some example numbers are not valid in current metadata
			}
			for _, z := range n.Zones {
				seen[z] = true
			}
		}
	}
	require.Greater(t, len(seen), 200)
	for z := range seen {
		if z == phonenumbers.UNKNOWN_TIMEZONE {
			continue
		}
		_, err := time.LoadLocation(z)
		require.NoError(t, err, z)
	}
}
