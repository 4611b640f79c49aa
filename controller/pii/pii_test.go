package pii_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/recording"
)

func newKeys(t *testing.T) *pii.Keys {
	t.Helper()
	k, err := pii.New(recording.NewMemoryKeyring())
	require.NoError(t, err)
	return k
}

func TestSealOpen(t *testing.T) {
	k := newKeys(t)
	a, err := k.Seal("number", "+12125551001")
	require.NoError(t, err)
	b, err := k.Seal("number", "+12125551001")
	require.NoError(t, err)
	require.NotEqual(t, a, b, "every seal is fresh")
	require.False(t, bytes.Contains(a, []byte("2125551001")), "no clear text")
	got, err := k.Open("number", a)
	require.NoError(t, err)
	require.Equal(t, "+12125551001", got)

	_, err = k.Open("name", a)
	require.Error(t, err, "sealed as another field")
	for i := range a {
		bad := bytes.Clone(a)
		bad[i] ^= 1
		_, err := k.Open("number", bad)
		require.Error(t, err, "byte %d altered", i)
		require.Equal(t, controller.EINTERNAL, controller.ErrorCode(err))
	}
	_, err = k.Open("number", a[:len(a)-1])
	require.Error(t, err)
	_, err = k.Open("number", nil)
	require.ErrorContains(t, err, "too short")

	id, err := pii.KeyIDOf(a)
	require.NoError(t, err)
	require.Equal(t, k.CurrentKeyID(), id)
	require.True(t, bytes.HasPrefix(a, pii.SealedPrefix(id)))
}

func TestNumberIndex(t *testing.T) {
	k := newKeys(t)
	a, err := k.NumberIndex("+12125551001")
	require.NoError(t, err)
	b, err := k.NumberIndex("+12125551001")
	require.NoError(t, err)
	require.Equal(t, a, b, "deterministic")
	require.Len(t, a, pii.IndexSize)
	c, err := k.NumberIndex("+12125551002")
	require.NoError(t, err)
	require.NotEqual(t, a, c)
	other, err := newKeys(t).NumberIndex("+12125551001")
	require.NoError(t, err)
	require.NotEqual(t, a, other, "keyed: another index key gives another index")
	fp, err := k.Fingerprint()
	require.NoError(t, err)
	require.NotEqual(t, a, fp)
}

func TestRotationKeepsOldValuesReadableUntilRetired(t *testing.T) {
	kr := recording.NewMemoryKeyring()
	k, err := pii.New(kr)
	require.NoError(t, err)
	old, err := k.Seal("number", "+447700900123")
	require.NoError(t, err)
	oldID := k.CurrentKeyID()
	idx, err := k.NumberIndex("+447700900123")
	require.NoError(t, err)

	newID := kr.Rotate()
	fresh, err := k.Seal("number", "+447700900123")
	require.NoError(t, err)
	got, err := pii.KeyIDOf(fresh)
	require.NoError(t, err)
	require.Equal(t, newID, got)
	v, err := k.Open("number", old)
	require.NoError(t, err, "the old key still opens what it sealed")
	require.Equal(t, "+447700900123", v)
	again, err := k.NumberIndex("+447700900123")
	require.NoError(t, err)
	require.Equal(t, idx, again, "the index does not rotate")

	require.NoError(t, kr.Retire(oldID))
	_, err = k.Open("number", old)
	require.ErrorContains(t, err, "retired")
}

func TestNewNeedsAnIndexKey(t *testing.T) {
	_, err := pii.New(nil)
	require.Error(t, err)
}

func FuzzOpen(f *testing.F) {
	k, err := pii.New(recording.NewMemoryKeyring())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := k.Seal("number", "+12125551001")
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 2, 'k', '1'})
	f.Add(append(pii.SealedPrefix("k1"), make([]byte, 40)...))
	f.Add([]byte(strings.Repeat("\x01\xff", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := k.Open("number", b)
		if err == nil && !bytes.Equal(b, good) {
			t.Fatalf("a value that was never sealed opened: %q", v)
		}
		if err != nil && controller.ErrorCode(err) != controller.EINTERNAL {
			t.Fatalf("error without a code: %v", err)
		}
	})
}
