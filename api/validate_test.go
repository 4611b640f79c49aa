package api

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// TestValueForms: the forms the API checks itself accept what the services
// accept from well-behaved clients and refuse the rest, naming the field.
func TestValueForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func(field, v string) error
		good  []string
		bad   []string
	}{
		{"phone", checkPhone,
			[]string{"+12125551006", "+1 212 555 1001", "+1 (212) 555-1001", "2125551006", "(212) 555.1006", "020 7946 0958", "12", "+442079460958"},
			[]string{"", "+", "+0123", "1", "1234567890123456", "+1234567890123456", "abc", "١٢٣", "+1+2", "1+2", "+15558880009,+15558880010",
				"+15558880009\nx", "{x=y}+15558880009", "&park()", strings.Repeat("9", 1000), strings.Repeat(" ", 39) + "12345"}},
		{"caller ID", checkCallerID,
			[]string{"+12125550100", "1000", "12345678901234567890", "+1234"},
			[]string{"", "12", "+0123", "+1 212 555 0100", "123456789012345678901", "abc"}},
		{"ID", checkID,
			[]string{"strict", "preset-lab", "new-list", "a.b_c-1", "00000000-0000-4000-8000-000000000001", strings.Repeat("a", 200)},
			[]string{"", "-x", ".x", "..", "../../etc/passwd", "a/b", `a\b`, "a b", "%00", "a%2Fb", "' OR 1=1 --", "x;y", "é", strings.Repeat("a", 201)}},
		{"switch name", checkSwitchName,
			[]string{"fs1", "ast-2.lab", "A_1"},
			[]string{"", "-fs", "fs 1", "fs/1", strings.Repeat("a", 65)}},
		{"file name", checkFileName,
			[]string{"p.wav", "Welcome (v2).wav", "accueil-été.wav", ""},
			[]string{"../../etc/passwd", "a/b.wav", `C:\fakepath\p.wav`, "..", "p..wav", "%00", "100%.wav", "a\x00b", "a\nb", strings.Repeat("a", 256)}},
	}
	for _, tt := range tests {
		for _, v := range tt.good {
			require.NoError(t, tt.check("f", v), "%s %q", tt.name, v)
		}
		for _, v := range tt.bad {
			err := tt.check("f", v)
			require.Error(t, err, "%s %q", tt.name, v)
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
			require.Equal(t, "f", controller.ErrorField(err))
			if len(v) > 6 {
				require.NotContains(t, err.Error(), v, "the error must not echo the value")
			}
		}
	}
}

// TestNonBlank: an upload of nothing, or of white space only, is refused;
// any other upload is handed on whole, its leading blank lines included
// (the import's line numbers count them).
func TestNonBlank(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", " ", "\n\r\n\t "} {
		_, err := nonBlank(strings.NewReader(body))
		require.ErrorIs(t, err, errEmptyDNCCSV, "%q", body)
	}
	_, err := nonBlank(nil)
	require.ErrorIs(t, err, errEmptyDNCCSV)

	for _, body := range []string{"+12125551002\n", "\n\n+12125551002\nx\n", strings.Repeat(" ", maxBlankPeek+10)} {
		r, err := nonBlank(iotest.OneByteReader(strings.NewReader(body)))
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, body, string(got))
	}
}
