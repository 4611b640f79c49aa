package recording_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/recording"
	"github.com/stretchr/testify/require"
)

type bundle struct {
	svc     *recording.Service
	store   *fakeStore
	blobs   recording.FSStore
	keys    *recording.Keyring
	keyPath string
	spool   string
	now     time.Time
	live    map[controller.CallID]bool // calls not yet ended, for Sweep
}

const retention = 30 * 24 * time.Hour

func setup(t *testing.T) *bundle {
	t.Helper()
	dir := t.TempDir()
	b := &bundle{
		blobs:   recording.FSStore{Dir: filepath.Join(dir, "blobs")},
		keyPath: filepath.Join(dir, "keyring.json"),
		spool:   filepath.Join(dir, "spool"),
		now:     time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		live:    map[controller.CallID]bool{},
	}
	var err error
	b.keys, err = recording.GenerateKeyring(b.keyPath)
	require.NoError(t, err)
	b.store = newFakeStore(func() time.Time { return b.now })
	b.svc, err = recording.New(recording.Config{
		Store:     b.store,
		Blobs:     b.blobs,
		Keys:      b.keys,
		SpoolDir:  b.spool,
		Retention: retention,
		Now:       func() time.Time { return b.now },
		CallEnded: func(ctx context.Context, id controller.CallID) (bool, error) { return !b.live[id], nil },
	})
	require.NoError(t, err)
	return b
}

// record begins a recording for call and writes audio where the switch would.
func (b *bundle) record(t *testing.T, call controller.CallID, audio []byte) controller.Recording {
	t.Helper()
	rec, err := b.svc.Begin(t.Context(), controller.Recording{TenantID: "acme", CallID: call})
	require.NoError(t, err)
	if audio != nil {
		require.NoError(t, os.WriteFile(rec.SpoolPath, audio, 0o600))
	}
	return rec
}

func (b *bundle) get(t *testing.T, id string) controller.Recording {
	t.Helper()
	r, err := b.store.GetRecording(t.Context(), "", id)
	require.NoError(t, err)
	return r
}

// openAll opens a recording and reads all of it.
func (b *bundle) openAll(t *testing.T, id string) []byte {
	t.Helper()
	_, rc, err := b.svc.Open(t.Context(), "acme", id)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	return got
}

// spoolFiles lists the regular files left in the spool.
func (b *bundle) spoolFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(b.spool, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, path)
		}
		return err
	})
	require.NoError(t, err)
	return files
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := recording.New(recording.Config{})
	requireCode(t, err, "invalid")
	b := setup(t)
	_, err = recording.New(recording.Config{Store: b.store, Blobs: b.blobs, Keys: b.keys, SpoolDir: b.spool})
	require.Equal(t, "Retention", controller.ErrorField(err))
}

func TestBeginFinishOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	audio := makeWAV(2, 8000, 3*32000+17) // 3 s of stereo at 8 kHz, and a bit
	rec := b.record(t, "call-1", audio)
	require.Equal(t, controller.RecordingActive, rec.Status)
	require.True(t, filepath.IsAbs(rec.SpoolPath))
	require.True(t, strings.HasPrefix(rec.SpoolPath, filepath.Join(b.spool, "acme", "call-1-")))
	require.True(t, strings.HasSuffix(rec.SpoolPath, ".wav"))

	require.NoError(t, b.svc.Finish(ctx, "call-1", rec.SpoolPath, 1234))
	require.NoFileExists(t, rec.SpoolPath, "the plaintext is removed")
	require.Empty(t, b.spoolFiles(t))

	got := b.get(t, rec.ID)
	sum := sha256.Sum256(audio)
	require.Equal(t, controller.RecordingStored, got.Status)
	require.Equal(t, hex.EncodeToString(sum[:]), got.SHA256)
	require.Equal(t, int64(len(audio)), got.Size)
	require.Equal(t, 2, got.Channels)
	require.Equal(t, int64(3000), got.DurationMS, "from the WAV header")
	require.Equal(t, "acme/"+rec.ID+".cgrec", got.BlobKey)
	require.Equal(t, b.keys.CurrentID(), got.KeyID)
	require.Equal(t, b.now.Add(retention), *got.RetainUntil)
	require.NotEmpty(t, got.WrappedKey)

	// The stored blob is ciphertext, not the WAV.
	blob, err := os.ReadFile(filepath.Join(b.blobs.Dir, "acme", rec.ID+".cgrec"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(blob, audio[44:1000]))

	require.Equal(t, audio, b.openAll(t, rec.ID))
	meta, rc, err := b.svc.Open(ctx, "acme", rec.ID)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, rec.ID, meta.ID)

	// Finishing again is a no-op.
	require.NoError(t, b.svc.Finish(ctx, "call-1", rec.SpoolPath, 1234))
	require.Equal(t, audio, b.openAll(t, rec.ID))
}

func TestFinishNotWAVUsesRecordMS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := b.record(t, "call-1", []byte("not a wav file at all"))
	require.NoError(t, b.svc.Finish(t.Context(), "", rec.SpoolPath, 4321))
	got := b.get(t, rec.ID)
	require.Equal(t, controller.RecordingStored, got.Status)
	require.Equal(t, int64(4321), got.DurationMS)
	require.Equal(t, []byte("not a wav file at all"), b.openAll(t, rec.ID))
}

func TestFinishMissingOrEmptySpool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	missing := b.record(t, "call-1", nil)
	require.NoError(t, b.svc.Finish(ctx, "call-1", missing.SpoolPath, 1000))
	got := b.get(t, missing.ID)
	require.Equal(t, controller.RecordingFailed, got.Status)
	require.Contains(t, got.Error, "plaintext lost before it was sealed")

	empty := b.record(t, "call-2", []byte{})
	require.NoError(t, b.svc.Finish(ctx, "call-2", empty.SpoolPath, 1000))
	got = b.get(t, empty.ID)
	require.Equal(t, controller.RecordingFailed, got.Status)
	require.Contains(t, got.Error, "empty")
	require.NoFileExists(t, empty.SpoolPath)

	_, _, err := b.svc.Open(ctx, "acme", missing.ID)
	requireCode(t, err, "conflict")
	require.ErrorContains(t, err, "failed")
}

func TestFinishWrongCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := b.record(t, "call-1", makeWAV(1, 8000, 100))
	requireCode(t, b.svc.Finish(t.Context(), "call-2", rec.SpoolPath, 0), "conflict")
	require.FileExists(t, rec.SpoolPath)
}

func TestFinishRemovesPlaintextLeftAfterCrash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	audio := makeWAV(1, 8000, 1000)
	rec := b.record(t, "call-1", audio)
	require.NoError(t, b.svc.Finish(t.Context(), "call-1", rec.SpoolPath, 0))
	// As if callgate crashed after marking it stored, before removing it.
	require.NoError(t, os.WriteFile(rec.SpoolPath, audio, 0o600))
	require.NoError(t, b.svc.Finish(t.Context(), "call-1", rec.SpoolPath, 0))
	require.NoFileExists(t, rec.SpoolPath)
}

func TestBeginValidates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for name, r := range map[string]controller.Recording{
		"no tenant":        {CallID: "c"},
		"unsafe tenant":    {TenantID: "../etc", CallID: "c"},
		"no call":          {TenantID: "acme"},
		"outside spool":    {TenantID: "acme", CallID: "c", SpoolPath: "/tmp/x.wav"},
		"relative":         {TenantID: "acme", CallID: "c", SpoolPath: "acme/x.wav"},
		"escapes spool":    {TenantID: "acme", CallID: "c", SpoolPath: b.spool + "/../x.wav"},
		"not a wav":        {TenantID: "acme", CallID: "c", SpoolPath: b.spool + "/acme/x.mp3"},
		"unsafe character": {TenantID: "acme", CallID: "c", SpoolPath: b.spool + "/acme/x y.wav"},
	} {
		_, err := b.svc.Begin(ctx, r)
		requireCode(t, err, "invalid", name)
	}
	rec, err := b.svc.Begin(ctx, controller.Recording{TenantID: "acme", CallID: "../../we ird"})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(b.spool, "acme"), filepath.Dir(rec.SpoolPath), "the call ID is sanitised")
}

func TestSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	audio := makeWAV(1, 8000, 70000)
	leftover := b.record(t, "ended", audio) // callgate crashed before RECORD_STOP was handled
	lost := b.record(t, "lost", nil)        // the plaintext vanished
	b.live["live"] = true
	live := b.record(t, "live", audio[:5000]) // still being recorded
	stray := filepath.Join(b.spool, "acme", "orphan.wav")
	require.NoError(t, os.WriteFile(stray, audio, 0o600))
	tmp := filepath.Join(b.spool, "acme", ".cgtmp-123")
	require.NoError(t, os.WriteFile(tmp, audio, 0o600))
	blobTmp := filepath.Join(b.blobs.Dir, "acme", ".cgtmp-456")
	require.NoError(t, os.MkdirAll(filepath.Dir(blobTmp), 0o700))
	require.NoError(t, os.WriteFile(blobTmp, []byte("half a blob"), 0o600))
	other := filepath.Join(b.spool, "acme", "notes.txt")
	require.NoError(t, os.WriteFile(other, []byte("not a recording"), 0o600))

	encrypted, removed, err := b.svc.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, encrypted)
	require.Equal(t, 3, removed, "the stray WAV and two temporary files")

	require.Equal(t, controller.RecordingStored, b.get(t, leftover.ID).Status)
	require.NoFileExists(t, leftover.SpoolPath)
	require.Equal(t, audio, b.openAll(t, leftover.ID))
	failed := b.get(t, lost.ID)
	require.Equal(t, controller.RecordingFailed, failed.Status)
	require.Contains(t, failed.Error, "plaintext lost before it was sealed")
	require.Equal(t, controller.RecordingActive, b.get(t, live.ID).Status)
	require.FileExists(t, live.SpoolPath, "a live call's recording is left alone")
	require.NoFileExists(t, stray)
	require.NoFileExists(t, tmp)
	require.NoFileExists(t, blobTmp)
	require.FileExists(t, other)

	// Once the call ends, RECORD_STOP seals it.
	require.NoError(t, b.svc.Finish(ctx, "live", live.SpoolPath, 0))
	require.Equal(t, audio[:5000], b.openAll(t, live.ID))
	require.ElementsMatch(t, []string{other}, b.spoolFiles(t))

	// A second sweep has nothing to do.
	encrypted, removed, err = b.svc.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, encrypted)
	require.Zero(t, removed)
}

func TestOpenStates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, _, err := b.svc.Open(ctx, "acme", "rec-9999")
	requireCode(t, err, "not_found")
	active := b.record(t, "call-1", makeWAV(1, 8000, 10))
	_, _, err = b.svc.Open(ctx, "acme", active.ID)
	requireCode(t, err, "conflict")
	_, _, err = b.svc.Open(ctx, "other-tenant", active.ID)
	requireCode(t, err, "not_found")
	_, _, err = b.svc.Open(ctx, "", active.ID)
	requireCode(t, err, "invalid")
}

func TestOpenTamperedBlob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	audio := makeWAV(1, 8000, 200000)
	rec := b.record(t, "call-1", audio)
	require.NoError(t, b.svc.Finish(t.Context(), "call-1", rec.SpoolPath, 0))
	path := filepath.Join(b.blobs.Dir, "acme", rec.ID+".cgrec")
	blob, err := os.ReadFile(path)
	require.NoError(t, err)
	blob[len(blob)-100] ^= 0x80
	require.NoError(t, os.WriteFile(path, blob, 0o600))

	_, rc, err := b.svc.Open(t.Context(), "acme", rec.ID)
	require.NoError(t, err, "the header is fine; the damage shows while reading")
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.ErrorIs(t, err, recording.ErrCorrupt)
	require.Equal(t, audio[:len(got)], got, "only authenticated audio is returned")
}

func TestRotateKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	var recs []controller.Recording
	var audios [][]byte
	for i, call := range []controller.CallID{"c1", "c2", "c3"} {
		audio := makeWAV(1, 8000, 1000*(i+1))
		rec := b.record(t, call, audio)
		require.NoError(t, b.svc.Finish(ctx, call, rec.SpoolPath, 0))
		recs, audios = append(recs, rec), append(audios, audio)
	}
	oldFile, err := os.ReadFile(b.keyPath)
	require.NoError(t, err)
	oldID := b.keys.CurrentID()

	newID, n, err := b.svc.RotateKeys(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.NotEqual(t, oldID, newID)
	for i, rec := range recs {
		require.Equal(t, newID, b.get(t, rec.ID).KeyID)
		require.Equal(t, audios[i], b.openAll(t, rec.ID))
	}
	require.True(t, b.keys.Retired(oldID))

	saved, err := recording.LoadKeyring(b.keyPath)
	require.NoError(t, err)
	require.Equal(t, newID, saved.CurrentID())
	require.True(t, saved.Retired(oldID))
	newFile, err := os.ReadFile(b.keyPath)
	require.NoError(t, err)
	require.NotContains(t, string(newFile), oldKeyMaterial(t, oldFile), "the old key is destroyed in the file")

	// New recordings use the new key.
	rec := b.record(t, "c4", makeWAV(1, 8000, 10))
	require.NoError(t, b.svc.Finish(ctx, "c4", rec.SpoolPath, 0))
	require.Equal(t, newID, b.get(t, rec.ID).KeyID)
}

// oldKeyMaterial returns the base64 key of a one-key keyring file.
func oldKeyMaterial(t *testing.T, file []byte) string {
	t.Helper()
	_, after, ok := strings.Cut(string(file), `"key": "`)
	require.True(t, ok)
	key, _, ok := strings.Cut(after, `"`)
	require.True(t, ok)
	require.NotEmpty(t, key)
	return key
}

func TestRotateKeysFailureKeepsOldKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	var recs []controller.Recording
	for _, call := range []controller.CallID{"c1", "c2"} {
		rec := b.record(t, call, makeWAV(1, 8000, 500))
		require.NoError(t, b.svc.Finish(ctx, call, rec.SpoolPath, 0))
		recs = append(recs, rec)
	}
	oldID := b.keys.CurrentID()
	b.store.rewrapFailAt = 2
	newID, n, err := b.svc.RotateKeys(ctx, nil)
	require.Error(t, err)
	require.Equal(t, 1, n)
	require.False(t, b.keys.Retired(oldID))
	saved, err := recording.LoadKeyring(b.keyPath)
	require.NoError(t, err)
	require.Equal(t, newID, saved.CurrentID(), "the new key was saved before use")
	require.False(t, saved.Retired(oldID))
	for _, rec := range recs {
		b.openAll(t, rec.ID) // both still open, under either key
	}

	// Running it again finishes the job.
	b.store.rewrapFailAt = 0
	newer, n, err := b.svc.RotateKeys(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.True(t, b.keys.Retired(oldID))
	require.True(t, b.keys.Retired(newID))
	for _, rec := range recs {
		require.Equal(t, newer, b.get(t, rec.ID).KeyID)
		b.openAll(t, rec.ID)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	old := b.record(t, "c1", makeWAV(1, 8000, 100))
	require.NoError(t, b.svc.Finish(ctx, "c1", old.SpoolPath, 0))
	b.now = b.now.Add(retention / 2)
	young := b.record(t, "c2", makeWAV(1, 8000, 100))
	require.NoError(t, b.svc.Finish(ctx, "c2", young.SpoolPath, 0))
	// The blob of one expired recording is already gone: that is fine.
	gone := b.record(t, "c3", makeWAV(1, 8000, 100))
	require.NoError(t, b.svc.Finish(ctx, "c3", gone.SpoolPath, 0))
	require.NoError(t, b.blobs.Delete(ctx, b.get(t, gone.ID).BlobKey))

	n, err := b.svc.Purge(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing has expired yet")

	b.now = b.now.Add(retention/2 + time.Hour)
	n, err = b.svc.Purge(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got := b.get(t, old.ID)
	require.Equal(t, controller.RecordingShredded, got.Status)
	require.Empty(t, got.WrappedKey)
	_, _, err = b.svc.Open(ctx, "acme", old.ID)
	requireCode(t, err, "conflict")
	require.ErrorContains(t, err, "shredded")
	_, err = b.blobs.Get(ctx, got.BlobKey)
	requireCode(t, err, "not_found")
	b.openAll(t, young.ID)

	b.now = b.now.Add(retention)
	n, err = b.svc.Purge(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, controller.RecordingShredded, b.get(t, gone.ID).Status)
}

func TestFinishConcurrentWithSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	audio := makeWAV(1, 8000, 100000)
	rec := b.record(t, "call-1", audio)
	errs := make(chan error, 3)
	for range 2 {
		go func() { errs <- b.svc.Finish(ctx, "call-1", rec.SpoolPath, 0) }()
	}
	go func() { _, _, err := b.svc.Sweep(ctx); errs <- err }()
	for range 3 {
		require.NoError(t, <-errs)
	}
	require.NoFileExists(t, rec.SpoolPath)
	require.Equal(t, audio, b.openAll(t, rec.ID), "the blob matches the stored data key")
}

func TestRotateKeysUnsavableKeepsCurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.Mkdir(dir, 0o700))
	keys, err := recording.GenerateKeyring(filepath.Join(dir, "keyring.json"))
	require.NoError(t, err)
	svc, err := recording.New(recording.Config{Store: b.store, Blobs: b.blobs, Keys: keys, SpoolDir: b.spool, Retention: retention})
	require.NoError(t, err)
	oldID := keys.CurrentID()
	require.NoError(t, os.RemoveAll(dir)) // the keyring can no longer be saved

	_, _, err = svc.RotateKeys(ctx, nil)
	require.Error(t, err)
	require.Equal(t, oldID, keys.CurrentID(), "a key that is not durable is never used")
	require.Equal(t, []string{oldID}, keys.IDs())
}
