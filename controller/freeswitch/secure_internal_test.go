package freeswitch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A profile block as mod_sofia 1.10's cmd_status prints it (tabs after
// padded keys), for the external-tls profile of freeswitch-conf.
const sofiaTLSProfile = "=================================================================================================\n" +
	"Name             \texternal-tls\n" +
	"Domain Name      \tN/A\n" +
	"URL              \tsip:mod_sofia@10.0.0.5:5082\n" +
	"BIND-URL         \tsip:mod_sofia@10.0.0.5:5082;maddr=10.0.0.5\n" +
	"TLS-URL          \tsip:mod_sofia@10.0.0.5:5081\n" +
	"TLS-BIND-URL     \tsips:mod_sofia@10.0.0.5:5081;maddr=10.0.0.5;transport=tls\n" +
	"HOLD-MUSIC       \tN/A\n" +
	"\nRegistrations:\n=================================================================================================\n"

func TestParseSofiaProfileTLS(t *testing.T) {
	t.Parallel()
	ok, why := parseSofiaProfileTLS("external-tls", sofiaTLSProfile)
	require.True(t, ok, why)
	require.Contains(t, why, "5081")

	ok, why = parseSofiaProfileTLS("external-tls", "Invalid Profile!\n")
	require.False(t, ok)
	require.Contains(t, why, "not running")

	noTLS := "Name             \texternal-tls\nURL              \tsip:mod_sofia@10.0.0.5:5080\n"
	ok, why = parseSofiaProfileTLS("external-tls", noTLS)
	require.False(t, ok)
	require.Contains(t, why, "without TLS")

	// Another profile's block never confirms this one.
	ok, _ = parseSofiaProfileTLS("carrier-tls", sofiaTLSProfile)
	require.False(t, ok)
	ok, _ = parseSofiaProfileTLS("external-tls", "-ERR sofia Command not found!\n")
	require.False(t, ok)
}

func TestCheckSecureTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		template, trunk string
		ok              bool
	}{
		{"sofia/gateway/carrier/{number}", "", true},
		{"sofia/gateway/{trunk}/{number}", "carrier", true},
		{"sofia/external-tls/{number}@sip.carrier.example;transport=tls", "", true},
		{"sofia/external-tls/{number}@sip.carrier.example", "", false}, // UDP from a TLS profile is not TLS
		{"sofia/external/{number}@sip.carrier.example;transport=tls", "", false},
		{"loopback/{number}/callgate-test", "", false},
		{"error/{number}", "", false},
	} {
		err := checkSecureTemplate(tc.template, tc.trunk, "external-tls")
		if tc.ok {
			require.NoError(t, err, tc.template)
		} else {
			require.Error(t, err, tc.template)
		}
	}
}
