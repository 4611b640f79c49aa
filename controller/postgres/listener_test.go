package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

func TestWaitForAttemptsTimesOut(t *testing.T) {
	b := setup(t)
	require.NoError(t, b.store.Listen(b.ctx))
	require.NoError(t, b.store.WaitForAttempts(b.ctx, time.Millisecond))

	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	require.ErrorIs(t, b.store.WaitForAttempts(ctx, time.Minute), context.Canceled)
}

func TestWaitForAttemptsWakesOnCreate(t *testing.T) {
	b := setup(t)
	other := pgtest.New(t) // another schema: its attempts must not matter
	require.NoError(t, b.store.Listen(b.ctx))
	require.NoError(t, other.Listen(b.ctx))

	waiting := func() chan error {
		done := make(chan error, 1)
		go func() { done <- b.store.WaitForAttempts(b.ctx, time.Hour) }()
		return done
	}
	requireWoken := func(done chan error) {
		t.Helper()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("WaitForAttempts was not woken")
		}
	}

	done := waiting()
	_, _, err := b.store.CreateCall(b.ctx, newCall(1), "")
	require.NoError(t, err)
	requireWoken(done)

	// Requeueing an attempt wakes waiters too.
	done = waiting()
	c := b.create(t, 1)[0]
	requireWoken(done)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "o", 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	done = waiting()
	require.NoError(t, b.store.ReleaseAttempt(b.ctx, c.ID, time.Now(), "retry"))
	requireWoken(done)

	// Creates in the other schema wake its own waiters.
	done = make(chan error, 1)
	go func() { done <- other.WaitForAttempts(b.ctx, time.Hour) }()
	_, _, err = other.CreateCall(b.ctx, controller.Call{To: "+15550001111"}, "")
	require.NoError(t, err)
	requireWoken(done)
}

func TestWaitForAttemptsSurvivesReconnect(t *testing.T) {
	b := setup(t)
	require.NoError(t, b.store.Listen(b.ctx))
	done := make(chan error, 1)
	go func() { done <- b.store.WaitForAttempts(b.ctx, time.Hour) }()

	// Kill the listening backend: the listener reconnects and wakes waiters,
	// since notifications may have been missed meanwhile.
	var killed int
	err := b.store.DB().Pool().QueryRow(b.ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query = 'LISTEN "' || callgate_attempts_channel(current_schema()) || '"'`).Scan(&killed)
	require.NoError(t, err)
	require.Equal(t, 1, killed)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("WaitForAttempts was not woken after the listener reconnected")
	}

	go func() { done <- b.store.WaitForAttempts(b.ctx, time.Hour) }()
	b.create(t, 1)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("WaitForAttempts was not woken by a create after reconnecting")
	}
	b.store.DB().Close()
	b.store.DB().Close() // idempotent
}
