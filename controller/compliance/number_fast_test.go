package compliance

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"
)

// TestFastValidityMatchesLibrary checks the shortcuts against the library
// on numbers across NANP (25 regions on +1), shared codes (+7, +44, +61)
// and single-region codes.
func TestFastValidityMatchesLibrary(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	prefixes := []string{"+1", "+7", "+44", "+61", "+86", "+33", "+39", "+262", "+599", "+47"}
	for range 20_000 {
		p := prefixes[r.IntN(len(prefixes))]
		n := p
		for range 6 + r.IntN(7) {
			n += fmt.Sprint(r.IntN(10))
		}
		pn, err := phonenumbers.Parse(n, "")
		if err != nil {
			continue
		}
		require.Equal(t, phonenumbers.IsValidNumber(pn), isValid(pn), n)
		fast, ok := nanpE164(n)
		if ok {
			require.Equal(t, phonenumbers.Format(pn, phonenumbers.E164), phonenumbers.Format(fast, phonenumbers.E164), n)
			require.Equal(t, phonenumbers.IsValidNumber(pn), isValid(fast), n)
		}
	}
}

func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"+12125550101", "+1212555010", "+442079460958", "(212) 555-0101", "+1 212 555 0101", "+19005550101", "+10790966420"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeNumber(s, "US")
		if err != nil {
			return
		}
		pn, perr := phonenumbers.Parse(strings.TrimSpace(s), "US")
		require.NoError(t, perr, "accepted %q the library cannot parse", s)
		require.True(t, phonenumbers.IsValidNumber(pn), "accepted %q the library finds invalid", s)
		require.Equal(t, phonenumbers.Format(pn, phonenumbers.E164), got, s)
	})
}
