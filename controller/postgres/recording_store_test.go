package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// marker is a fake rewrap: the same key "wrapped" under keyID.
func marker(keyID string) func(r controller.Recording) ([]byte, error) {
	return func(r controller.Recording) ([]byte, error) {
		return append([]byte(keyID+":"), r.WrappedKey...), nil
	}
}

func TestRecordingLifecycle(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	call, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550001234"}, "")
	require.NoError(t, err)
	acmeCall, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550001234", TenantID: "acme"}, "")
	require.NoError(t, err)

	r1, err := b.store.CreateRecording(b.ctx, controller.Recording{CallID: call.ID,
		SpoolPath: "/var/spool/callgate/r1.wav", ConsentID: "c-1", Status: "stored", KeyID: "ignored"})
	require.NoError(t, err)
	require.NotEmpty(t, r1.ID)
	require.Equal(t, controller.RecordingActive, r1.Status)
	require.Equal(t, controller.DefaultTenant, r1.TenantID)
	require.Empty(t, r1.KeyID)
	require.False(t, r1.CreatedAt.IsZero())
	r2, err := b.store.CreateRecording(b.ctx, controller.Recording{CallID: call.ID})
	require.NoError(t, err)
	r3, err := b.store.CreateRecording(b.ctx, controller.Recording{CallID: acmeCall.ID, TenantID: "acme"})
	require.NoError(t, err)

	active, err := b.store.ActiveRecordings(b.ctx)
	require.NoError(t, err)
	require.Equal(t, []controller.Recording{r1, r2, r3}, active)
	list, err := b.store.ListRecordings(b.ctx, controller.DefaultTenant, call.ID)
	require.NoError(t, err)
	require.Equal(t, []controller.Recording{r1, r2}, list)
	list, err = b.store.ListRecordings(b.ctx, "acme", call.ID)
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Empty(t, list)

	// Stored: every field round trips.
	retain := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	sealed := r1
	sealed.BlobKey, sealed.KeyID, sealed.WrappedKey = "recordings/r1", "k1", []byte("wrapped-1")
	sealed.SHA256, sealed.Size, sealed.DurationMS, sealed.Channels = "abc123", 960044, 30000, 2
	sealed.RetainUntil = &retain
	require.NoError(t, b.store.MarkStored(b.ctx, sealed))
	got, err := b.store.GetRecording(b.ctx, controller.DefaultTenant, r1.ID)
	require.NoError(t, err)
	require.NotNil(t, got.StoredAt)
	require.WithinDuration(t, time.Now(), *got.StoredAt, time.Minute)
	require.True(t, got.RetainUntil.Equal(retain))
	want := sealed
	want.Status, want.StoredAt, want.RetainUntil = controller.RecordingStored, got.StoredAt, got.RetainUntil
	require.Equal(t, want, got)
	anyTenant, err := b.store.GetRecording(b.ctx, "", r1.ID)
	require.NoError(t, err)
	require.Equal(t, got, anyTenant)

	requireCode(t, controller.ECONFLICT, b.store.MarkStored(b.ctx, sealed))
	missing := sealed
	missing.ID = uuid.NewString()
	requireCode(t, controller.ENOTFOUND, b.store.MarkStored(b.ctx, missing))
	noKey := sealed
	noKey.ID, noKey.WrappedKey = r2.ID, nil
	err = b.store.MarkStored(b.ctx, noKey)
	requireCode(t, controller.EINVALID, err)
	require.Equal(t, "wrapped_key", controller.ErrorField(err))

	// Failed.
	require.NoError(t, b.store.MarkFailed(b.ctx, r2.ID, "spool file missing"))
	failed, err := b.store.GetRecording(b.ctx, controller.DefaultTenant, r2.ID)
	require.NoError(t, err)
	require.Equal(t, controller.RecordingFailed, failed.Status)
	require.Equal(t, "spool file missing", failed.Error)
	requireCode(t, controller.ECONFLICT, b.store.MarkFailed(b.ctx, r2.ID, "again"))
	requireCode(t, controller.ENOTFOUND, b.store.MarkFailed(b.ctx, uuid.NewString(), "x"))
	stale := sealed
	stale.ID = r2.ID
	requireCode(t, controller.ECONFLICT, b.store.MarkStored(b.ctx, stale))

	// The acme recording is stored under the new key already.
	future := time.Now().Add(24 * time.Hour)
	require.NoError(t, b.store.MarkStored(b.ctx, controller.Recording{ID: r3.ID, BlobKey: "recordings/r3",
		KeyID: "k2", WrappedKey: []byte("wrapped-3"), RetainUntil: &future}))
	active, err = b.store.ActiveRecordings(b.ctx)
	require.NoError(t, err)
	require.Empty(t, active)

	// Rewrap to k2: only r1 needs it.
	var seen []string
	n, err := b.store.RewrapKeys(b.ctx, "k2", func(r controller.Recording) ([]byte, error) {
		seen = append(seen, r.ID)
		require.Equal(t, "k1", r.KeyID)
		return marker("k2")(r)
	})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{r1.ID}, seen)
	got, err = b.store.GetRecording(b.ctx, "", r1.ID)
	require.NoError(t, err)
	require.Equal(t, "k2", got.KeyID)
	require.Equal(t, []byte("k2:wrapped-1"), got.WrappedKey)
	got3, err := b.store.GetRecording(b.ctx, "acme", r3.ID)
	require.NoError(t, err)
	require.Equal(t, []byte("wrapped-3"), got3.WrappedKey)
	n, err = b.store.RewrapKeys(b.ctx, "k2", marker("k2"))
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = b.store.RewrapKeys(b.ctx, "", marker(""))
	requireCode(t, controller.EINVALID, err)

	// An error stops it; nothing is saved for the recording that failed.
	boom := errors.New("kms down")
	n, err = b.store.RewrapKeys(b.ctx, "k3", func(controller.Recording) ([]byte, error) { return nil, boom })
	require.ErrorIs(t, err, boom)
	require.Zero(t, n)
	n, err = b.store.RewrapKeys(b.ctx, "k3", func(controller.Recording) ([]byte, error) { return nil, nil })
	require.Error(t, err, "an empty key is an error")
	require.Zero(t, n)
	got, err = b.store.GetRecording(b.ctx, "", r1.ID)
	require.NoError(t, err)
	require.Equal(t, "k2", got.KeyID)

	// Expired: r1 only (r3 is retained for a day, r2 failed).
	expired, err := b.store.ExpiredRecordings(b.ctx, time.Now(), 10)
	require.NoError(t, err)
	require.Len(t, expired, 1)
	require.Equal(t, r1.ID, expired[0].ID)
	expired, err = b.store.ExpiredRecordings(b.ctx, future.Add(time.Second), 10)
	require.NoError(t, err)
	require.Len(t, expired, 2)
	expired, err = b.store.ExpiredRecordings(b.ctx, future.Add(time.Second), 1)
	require.NoError(t, err)
	require.Equal(t, r1.ID, expired[0].ID, "the longest expired first")
	_, err = b.store.ExpiredRecordings(b.ctx, time.Now(), 0)
	requireCode(t, controller.EINVALID, err)

	// Shredded: the wrapped key is gone; shredding again does nothing.
	at := time.Now().Truncate(time.Microsecond)
	require.NoError(t, b.store.ShredRecording(b.ctx, r1.ID, at))
	got, err = b.store.GetRecording(b.ctx, controller.DefaultTenant, r1.ID)
	require.NoError(t, err)
	require.Equal(t, controller.RecordingShredded, got.Status)
	require.Nil(t, got.WrappedKey)
	require.True(t, got.ShreddedAt.Equal(at))
	require.NoError(t, b.store.ShredRecording(b.ctx, r1.ID, time.Time{}))
	got, err = b.store.GetRecording(b.ctx, controller.DefaultTenant, r1.ID)
	require.NoError(t, err)
	require.True(t, got.ShreddedAt.Equal(at), "the first shred's time is kept")
	requireCode(t, controller.ECONFLICT, b.store.ShredRecording(b.ctx, r2.ID, at))
	requireCode(t, controller.ENOTFOUND, b.store.ShredRecording(b.ctx, uuid.NewString(), at))
	requireCode(t, controller.ENOTFOUND, b.store.ShredRecording(b.ctx, "x", at))
	expired, err = b.store.ExpiredRecordings(b.ctx, time.Now(), 10)
	require.NoError(t, err)
	require.Empty(t, expired)
	n, err = b.store.RewrapKeys(b.ctx, "k4", marker("k4"))
	require.NoError(t, err)
	require.Equal(t, 1, n, "a shredded recording has no key to rewrap")

	// The database refuses a shredded row that keeps its key.
	_, err = b.store.DB().Pool().Exec(b.ctx, `UPDATE recordings SET wrapped_key = 'x' WHERE id = $1`, r1.ID)
	require.Error(t, err)

	// Tenant isolation.
	_, err = b.store.GetRecording(b.ctx, "acme", r1.ID)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetRecording(b.ctx, controller.DefaultTenant, r3.ID)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetRecording(b.ctx, "", "x")
	requireCode(t, controller.ENOTFOUND, err)
}

func TestCreateRecordingRejects(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	call, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550001234"}, "")
	require.NoError(t, err)
	ok := controller.Recording{CallID: call.ID}
	for name, tc := range map[string]struct {
		edit  func(*controller.Recording)
		field string
	}{
		"id":           {func(r *controller.Recording) { r.ID = "x" }, "id"},
		"call id":      {func(r *controller.Recording) { r.CallID = "x" }, "call_id"},
		"unknown call": {func(r *controller.Recording) { r.CallID = controller.CallID(uuid.NewString()) }, "call_id"},
		"other tenant": {func(r *controller.Recording) { r.TenantID = "acme" }, "call_id"},
		"tenant":       {func(r *controller.Recording) { r.TenantID = "nobody" }, "tenant_id"},
		"spool path":   {func(r *controller.Recording) { r.SpoolPath = "a\x00" }, "spool_path"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			_, err := b.store.CreateRecording(b.ctx, r)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
	id := uuid.NewString()
	_, err = b.store.CreateRecording(b.ctx, controller.Recording{ID: id, CallID: call.ID})
	require.NoError(t, err)
	_, err = b.store.CreateRecording(b.ctx, controller.Recording{ID: id, CallID: call.ID})
	requireCode(t, controller.ECONFLICT, err)
}

// TestRecordingRewrapBatches: more recordings than a batch are all rewrapped, in
// ID order; an error in the second batch keeps the first batch and what the
// second did before it.
func TestRecordingRewrapBatches(t *testing.T) {
	b := setup(t)
	call, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550001234"}, "")
	require.NoError(t, err)
	const total = 1201
	_, err = b.store.DB().Pool().Exec(b.ctx, `
		INSERT INTO recordings (id, tenant_id, call_id, status, key_id, wrapped_key, stored_at)
		SELECT gen_random_uuid(), 'default', $1, 'stored', 'old', '\x00', now()
		FROM generate_series(1, $2)`, call.ID, total)
	require.NoError(t, err)

	boom := errors.New("boom")
	var calls int
	n, err := b.store.RewrapKeys(b.ctx, "new", func(r controller.Recording) ([]byte, error) {
		calls++
		if calls == 700 {
			return nil, boom
		}
		return marker("new")(r)
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 699, n)
	var onNew int
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx,
		`SELECT count(*) FROM recordings WHERE key_id = 'new'`).Scan(&onNew))
	require.Equal(t, 699, onNew)

	var seen []string
	n, err = b.store.RewrapKeys(b.ctx, "new", func(r controller.Recording) ([]byte, error) {
		seen = append(seen, r.ID)
		return marker("new")(r)
	})
	require.NoError(t, err)
	require.Equal(t, total-699, n)
	require.Len(t, seen, total-699)
	require.True(t, slices.IsSorted(seen), "rewrapped in ID order")
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx,
		`SELECT count(*) FROM recordings WHERE key_id = 'new' AND wrapped_key = 'new:'::bytea || '\x00'::bytea`).Scan(&onNew))
	require.Equal(t, total, onNew)
}
