package recording_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/recording"
)

// A controller that loaded the keyring before another process rotated it
// wraps with the new key from its next use on, and keeps its keys if the
// file is broken.
func TestKeyringRefresh(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	server, err := recording.GenerateKeyring(path)
	require.NoError(t, err)
	old := server.CurrentID()
	dk := make([]byte, recording.KeySize)
	_, wrapped, err := server.Wrap(dk, "rec-1")
	require.NoError(t, err)

	cli, err := recording.LoadKeyring(path)
	require.NoError(t, err)
	fresh := cli.Rotate()
	require.NoError(t, cli.Save())

	require.NoError(t, server.Refresh())
	id, _, err := server.Wrap(dk, "rec-2")
	require.NoError(t, err)
	require.Equal(t, fresh, id)
	got, err := server.Unwrap(old, wrapped, "rec-1")
	require.NoError(t, err, "the old key is not retired yet")
	require.Equal(t, dk, got)

	require.NoError(t, cli.Retire(old))
	require.NoError(t, cli.Save())
	require.NoError(t, server.Refresh())
	_, err = server.Unwrap(old, wrapped, "rec-1")
	require.Error(t, err, "the retired key's material is gone here too")
	require.NoError(t, server.Refresh(), "nothing changed")
}
