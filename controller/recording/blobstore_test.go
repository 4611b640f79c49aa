package recording_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/callgate/callgate/controller/recording"
	"github.com/stretchr/testify/require"
)

func TestValidateBlobKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "acme/rec-1.cgrec", "a/b/c_d-e.f"} {
		require.NoError(t, recording.ValidateBlobKey(key), key)
	}
	for _, key := range []string{"", "/abs", "a/../b", "..", "a//b", "a/", "./a", "a b", `a\b`, "a/.cgtmp-1", strings.Repeat("a", 513), "é"} {
		requireCode(t, recording.ValidateBlobKey(key), "invalid", key)
	}
}

func TestFSStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := recording.FSStore{Dir: filepath.Join(t.TempDir(), "blobs")}

	_, err := s.Get(ctx, "acme/x.cgrec")
	requireCode(t, err, "not_found")
	requireCode(t, s.Delete(ctx, "acme/x.cgrec"), "not_found")
	_, err = s.Put(ctx, "../x", strings.NewReader("x"))
	requireCode(t, err, "invalid")

	n, err := s.Put(ctx, "acme/x.cgrec", strings.NewReader("first"))
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	n, err = s.Put(ctx, "acme/x.cgrec", strings.NewReader("second"))
	require.NoError(t, err)
	require.Equal(t, int64(6), n)
	rc, err := s.Get(ctx, "acme/x.cgrec")
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "second", string(got))

	info, err := os.Stat(filepath.Join(s.Dir, "acme", "x.cgrec"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(filepath.Join(s.Dir, "acme"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	// A failed Put leaves neither the blob nor a temporary file.
	_, err = s.Put(ctx, "acme/y.cgrec", io.MultiReader(bytes.NewReader([]byte("part")), iotest.ErrReader(io.ErrClosedPipe)))
	require.ErrorIs(t, err, io.ErrClosedPipe)
	entries, err := os.ReadDir(filepath.Join(s.Dir, "acme"))
	require.NoError(t, err)
	require.Len(t, entries, 1)

	require.NoError(t, s.Delete(ctx, "acme/x.cgrec"))
	_, err = s.Get(ctx, "acme/x.cgrec")
	requireCode(t, err, "not_found")

	n2, err := recording.FSStore{Dir: filepath.Join(t.TempDir(), "missing")}.RemoveTemps(ctx)
	require.NoError(t, err)
	require.Zero(t, n2)
}
