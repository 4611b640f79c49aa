package recording_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/callgate/callgate/controller/recording"
	"github.com/stretchr/testify/require"
)

// The wire format, pinned: a 15-byte header, then chunks of 64 KiB of
// plaintext plus a 16-byte GCM tag.
const (
	headerSize = 15
	chunkSize  = 64 << 10
	sealedSize = chunkSize + 16
)

func seal(t *testing.T, plain, key []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	sum, n, err := recording.Seal(&buf, bytes.NewReader(plain), key)
	require.NoError(t, err)
	want := sha256.Sum256(plain)
	require.Equal(t, hex.EncodeToString(want[:]), sum)
	require.Equal(t, int64(len(plain)), n)
	return buf.Bytes()
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	for _, size := range []int{0, 1, 100, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize, 1 << 20} {
		plain := make([]byte, size)
		rand.Read(plain)
		sealed := seal(t, plain, key)
		chunks := max((size+chunkSize-1)/chunkSize, 1)
		require.Equal(t, headerSize+size+16*chunks, len(sealed), "size %d", size)
		require.Equal(t, "CGREC1", string(sealed[:6]))

		var out bytes.Buffer
		n, err := recording.Open(&out, bytes.NewReader(sealed), key)
		require.NoError(t, err, "size %d", size)
		require.Equal(t, int64(size), n)
		require.True(t, bytes.Equal(plain, out.Bytes()), "size %d", size)

		// The streaming reader gives the same bytes read one at a time,
		// from a source that returns one byte at a time.
		r, err := recording.NewOpener(iotest.OneByteReader(bytes.NewReader(sealed)), key)
		require.NoError(t, err)
		if size <= 2*chunkSize {
			got, err := io.ReadAll(iotest.OneByteReader(r))
			require.NoError(t, err)
			require.True(t, bytes.Equal(plain, got), "size %d", size)
		}
	}
}

func TestSealSameInputDiffers(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	a, b := seal(t, []byte("hello"), key), seal(t, []byte("hello"), key)
	require.NotEqual(t, a, b, "the random nonce prefix must differ between files")
}

// openErr decrypts sealed and returns the error and what reached dst.
func openErr(sealed, key []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := recording.Open(&out, bytes.NewReader(sealed), key)
	return out.Bytes(), err
}

func TestOpenTampered(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	plain := make([]byte, 3*chunkSize+500) // chunks: full, full, full, 500 bytes
	rand.Read(plain)
	sealed := seal(t, plain, key)
	other := seal(t, plain, key) // same key and plaintext, another file
	chunk := func(b []byte, i int) []byte {
		end := min(headerSize+(i+1)*sealedSize, len(b))
		return b[headerSize+i*sealedSize : end]
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	hdr := sealed[:headerSize]

	flip := func(at int) []byte {
		b := bytes.Clone(sealed)
		b[at] ^= 0x01
		return b
	}
	cases := map[string]struct {
		sealed    []byte
		goodBytes int // plaintext that may reach dst before the bad chunk
	}{
		"flip in first chunk":      {flip(headerSize + 10), 0},
		"flip in last chunk":       {flip(len(sealed) - 1), 3 * chunkSize},
		"flip nonce prefix":        {flip(headerSize - 1), 0},
		"flip chunk size":          {flip(8), 0},
		"drop last chunk":          {sealed[:headerSize+3*sealedSize], 2 * chunkSize},
		"drop last byte":           {sealed[:len(sealed)-1], 3 * chunkSize},
		"drop all chunks":          {hdr, 0},
		"header cut short":         {sealed[:10], 0},
		"empty":                    {nil, 0},
		"swap chunks 0 and 1":      {cat(hdr, chunk(sealed, 1), chunk(sealed, 0), chunk(sealed, 2), chunk(sealed, 3)), 0},
		"splice chunk 1 of other":  {cat(hdr, chunk(sealed, 0), chunk(other, 1), chunk(sealed, 2), chunk(sealed, 3)), chunkSize},
		"other header, own chunks": {cat(other[:headerSize], sealed[headerSize:]), 0},
		"trailing garbage":         {cat(sealed, []byte{0}), 3 * chunkSize},
		"bad magic":                {cat([]byte("XGREC1"), sealed[6:]), 0},
	}
	for name, tc := range cases {
		out, err := openErr(tc.sealed, key)
		require.Error(t, err, name)
		require.ErrorIs(t, err, recording.ErrCorrupt, name)
		require.LessOrEqual(t, len(out), tc.goodBytes, name)
		require.True(t, bytes.Equal(plain[:len(out)], out), "%s: only authenticated plaintext may be written", name)
	}
}

func TestOpenCorruptErrorIsClear(t *testing.T) {
	t.Parallel()
	sealed := seal(t, []byte("some audio"), testKey(1))
	_, err := openErr(sealed[:len(sealed)-1], testKey(1))
	require.ErrorContains(t, err, "recording ciphertext is corrupt or truncated")
}

func TestOpenWrongKey(t *testing.T) {
	t.Parallel()
	sealed := seal(t, []byte("some audio"), testKey(1))
	out, err := openErr(sealed, testKey(2))
	require.ErrorIs(t, err, recording.ErrCorrupt)
	require.Empty(t, out)

	_, err = openErr(sealed, []byte("short"))
	requireCode(t, err, "invalid")
	_, _, err = recording.Seal(io.Discard, bytes.NewReader(nil), make([]byte, 16))
	requireCode(t, err, "invalid")
}

func TestOpenerReadErrorIsNotEOF(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	sealed := seal(t, make([]byte, chunkSize+10), key)
	r, err := recording.NewOpener(bytes.NewReader(sealed[:headerSize+sealedSize]), key)
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	require.ErrorIs(t, err, recording.ErrCorrupt)
	_, err = r.Read(make([]byte, 10))
	require.ErrorIs(t, err, recording.ErrCorrupt, "the error is sticky")
}

func TestSealSourceError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	_, _, err := recording.Seal(io.Discard, iotest.ErrReader(boom), testKey(1))
	require.ErrorIs(t, err, boom)
}
