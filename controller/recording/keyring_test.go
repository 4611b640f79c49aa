package recording_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callgate/callgate/controller/recording"
	"github.com/stretchr/testify/require"
)

func writeKeyring(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	require.NoError(t, os.WriteFile(path, []byte(body), mode))
	require.NoError(t, os.Chmod(path, mode))
	return path
}

func b64(seed byte) string { return base64.StdEncoding.EncodeToString(testKey(seed)) }

func TestLoadKeyringErrors(t *testing.T) {
	t.Parallel()
	good := fmt.Sprintf(`{"current": "k2", "keys": [
		{"id": "k1", "key": "", "created_at": "2024-01-01T00:00:00Z", "retired_at": "2025-01-01T00:00:00Z"},
		{"id": "k2", "key": %q, "created_at": "2025-01-01T00:00:00Z", "retired_at": null}]}`, b64(1))
	kr, err := recording.LoadKeyring(writeKeyring(t, good, 0o600))
	require.NoError(t, err)
	require.Equal(t, "k2", kr.CurrentID())
	require.True(t, kr.Retired("k1"))

	_, err = recording.LoadKeyring(filepath.Join(t.TempDir(), "nope.json"))
	require.ErrorContains(t, err, "does not exist")

	_, err = recording.LoadKeyring(writeKeyring(t, good, 0o640))
	require.ErrorContains(t, err, "chmod 600")

	short := base64.StdEncoding.EncodeToString([]byte("sixteen bytes!!!"))
	for name, tc := range map[string]struct{ body, want string }{
		"bad JSON":      {`{"current": "k1", "keys": [`, "bad JSON"},
		"unknown field": {`{"current": "k1", "kees": []}`, "bad JSON"},
		"no keys":       {`{"current": "k1", "keys": []}`, "no keys"},
		"short key":     {fmt.Sprintf(`{"current": "k1", "keys": [{"id": "k1", "key": %q}]}`, short), "must be 32 bytes"},
		"not base64":    {`{"current": "k1", "keys": [{"id": "k1", "key": "!!!"}]}`, "must be 32 bytes"},
		"no current":    {fmt.Sprintf(`{"current": "k9", "keys": [{"id": "k1", "key": %q}]}`, b64(1)), `current key "k9" not found`},
		"current unset": {fmt.Sprintf(`{"keys": [{"id": "k1", "key": %q}]}`, b64(1)), `"current" is not set`},
		"duplicate id":  {fmt.Sprintf(`{"current": "k1", "keys": [{"id": "k1", "key": %q}, {"id": "k1", "key": %q}]}`, b64(1), b64(2)), `duplicate key id "k1"`},
		"bad id":        {fmt.Sprintf(`{"current": "k/1", "keys": [{"id": "k/1", "key": %q}]}`, b64(1)), "id"},
		"no material":   {`{"current": "k1", "keys": [{"id": "k1", "key": ""}]}`, "no material"},
		"current retired": {fmt.Sprintf(`{"current": "k1", "keys": [{"id": "k1", "key": %q, "retired_at": "2025-01-01T00:00:00Z"}]}`, b64(1)),
			"retired"},
	} {
		_, err := recording.LoadKeyring(writeKeyring(t, tc.body, 0o600))
		require.ErrorContains(t, err, tc.want, name)
		require.NotContains(t, err.Error(), b64(1), "%s: errors never show key material", name)
	}
}

func TestGenerateKeyring(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyring.json")
	kr, err := recording.GenerateKeyring(path)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	_, err = recording.GenerateKeyring(path)
	require.ErrorContains(t, err, "refusing to overwrite")

	loaded, err := recording.LoadKeyring(path)
	require.NoError(t, err)
	require.Equal(t, kr.CurrentID(), loaded.CurrentID())

	// A key wrapped by one unwraps with the other.
	id, wrapped, err := kr.Wrap(testKey(5), "rec-1")
	require.NoError(t, err)
	dk, err := loaded.Unwrap(id, wrapped, "rec-1")
	require.NoError(t, err)
	require.Equal(t, testKey(5), dk)
}

func TestKeyringWrapUnwrap(t *testing.T) {
	t.Parallel()
	kr, err := recording.GenerateKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	require.NoError(t, err)
	id, wrapped, err := kr.Wrap(testKey(9), "rec-1")
	require.NoError(t, err)
	require.False(t, bytes.Contains(wrapped, testKey(9)))

	_, err = kr.Unwrap(id, wrapped, "rec-2")
	require.ErrorContains(t, err, "does not authenticate", "the wrapped key is bound to its recording")
	_, err = kr.Unwrap("k99", wrapped, "rec-1")
	require.ErrorContains(t, err, "not in the recording keyring")
	_, err = kr.Unwrap(id, wrapped[:10], "rec-1")
	require.Error(t, err)
	_, _, err = kr.Wrap([]byte("short"), "rec-1")
	requireCode(t, err, "invalid")

	newID := kr.Rotate()
	require.NotEqual(t, id, newID)
	require.Equal(t, newID, kr.CurrentID())
	id2, _, err := kr.Wrap(testKey(9), "rec-1")
	require.NoError(t, err)
	require.Equal(t, newID, id2, "Wrap uses the current key")

	requireCode(t, kr.Retire(newID), "conflict")
	requireCode(t, kr.Retire("k99"), "not_found")
	require.NoError(t, kr.Retire(id))
	require.NoError(t, kr.Retire(id), "retiring twice is fine")
	_, err = kr.Unwrap(id, wrapped, "rec-1")
	require.ErrorContains(t, err, "retired and its material destroyed")
}

func TestKeyringSaveDestroysRetiredMaterial(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyring.json")
	kr, err := recording.GenerateKeyring(path)
	require.NoError(t, err)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	oldID := kr.CurrentID()
	kr.Rotate()
	require.NoError(t, kr.Retire(oldID))
	require.NoError(t, kr.Save())

	after, err := os.ReadFile(path)
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(before), "\n") {
		if strings.Contains(line, `"key"`) {
			require.NotContains(t, string(after), strings.TrimSpace(line), "old key material must be gone")
		}
	}
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")

	loaded, err := recording.LoadKeyring(path)
	require.NoError(t, err)
	require.True(t, loaded.Retired(oldID))
	require.Equal(t, kr.CurrentID(), loaded.CurrentID())
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	t.Parallel()
	path := writeKeyring(t, fmt.Sprintf(`{"current": "k1", "keys": [{"id": "k1", "key": %q}]}`, b64(1)), 0o600)
	kr, err := recording.LoadKeyring(path)
	require.NoError(t, err)
	key := testKey(1)
	for _, s := range []string{
		fmt.Sprint(kr), fmt.Sprintf("%v %+v %#v %s", kr, kr, kr, kr),
	} {
		require.Contains(t, s, "k1")
		require.NotContains(t, s, b64(1))
		require.NotContains(t, s, fmt.Sprint(key))
		require.NotContains(t, s, fmt.Sprintf("%x", key))
	}
}
