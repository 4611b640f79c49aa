package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestUpsertSwitch(t *testing.T) {
	b := setup(t)
	sw := controller.SwitchRecord{Name: "fs1", Kind: "freeswitch", Address: "127.0.0.1:8021", MaxSessions: 100, MaxCPS: 10}
	require.NoError(t, b.store.UpsertSwitch(b.ctx, sw))
	ok, err := b.store.AcquireSwitchLease(b.ctx, "fs1", "owner-a", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)

	sw.MaxCPS = 20
	require.NoError(t, b.store.UpsertSwitch(b.ctx, sw))
	got, err := b.store.GetSwitch(b.ctx, "fs1")
	require.NoError(t, err)
	require.Equal(t, 20, got.MaxCPS)
	require.Equal(t, "freeswitch", got.Kind)
	require.Equal(t, "owner-a", got.Owner, "upsert keeps the lease")
	require.True(t, got.LeaseUntil.After(time.Now()))

	_, err = b.store.GetSwitch(b.ctx, "nope")
	requireCode(t, controller.ENOTFOUND, err)
	requireCode(t, controller.EINVALID, b.store.UpsertSwitch(b.ctx, controller.SwitchRecord{}))
}

func TestSwitchLease(t *testing.T) {
	b := setup(t)
	acquire := func(owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := b.store.AcquireSwitchLease(b.ctx, "fs1", owner, ttl)
		require.NoError(t, err)
		return ok
	}
	// The switch need not be recorded yet.
	require.True(t, acquire("a", time.Minute))
	require.True(t, acquire("a", time.Minute), "renew")
	require.False(t, acquire("b", time.Minute), "held by a")

	// a renews with a lease that has already expired: b may steal it.
	require.True(t, acquire("a", -time.Second))
	require.True(t, acquire("b", time.Minute), "steal after expiry")
	require.False(t, acquire("a", time.Minute), "held by b")

	require.NoError(t, b.store.ReleaseSwitchLease(b.ctx, "fs1", "a"), "not a's: no-op")
	require.False(t, acquire("a", time.Minute))
	require.NoError(t, b.store.ReleaseSwitchLease(b.ctx, "fs1", "b"))
	require.True(t, acquire("a", time.Minute), "free after release")
}
