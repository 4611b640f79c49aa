package postgres

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzJSONMap checks the hand-written encoder against encoding/json: the
// same object once decoded, whatever the keys and values hold.
func FuzzJSONMap(f *testing.F) {
	f.Add("region", "Nanshan", "size", "small")
	f.Add("a\"b", "c\\d", "\x01", "\xff\xfe<&>\u2028")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		got, err := jsonMap(m)
		require.NoError(t, err)
		want, err := json.Marshal(m)
		require.NoError(t, err)
		var a, b map[string]string
		require.NoError(t, json.Unmarshal(got, &a), "%s", got)
		require.NoError(t, json.Unmarshal(want, &b))
		require.Equal(t, b, a)
	})
}
