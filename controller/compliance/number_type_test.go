package compliance_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

func TestNumberType(t *testing.T) {
	t.Parallel()
	for number, want := range map[string]string{
		"+447400123456": "mobile",
		"+442071838750": "fixed_line",
		"+12125551234":  "fixed_line_or_mobile", // NANP: the plan does not tell them apart
		"+18005550199":  "toll_free",
		"+33612345678":  "mobile",
		"+33142685300":  "fixed_line",
	} {
		n, err := compliance.ParseNumber(number, "")
		require.NoError(t, err, number)
		got := compliance.NumberType(n)
		require.Equal(t, want, got, number)
		require.True(t, slices.Contains(controller.NumberTypes, got))
	}
	require.Equal(t, "unknown", compliance.NumberType(compliance.Number{E164: "+1"}))
}
