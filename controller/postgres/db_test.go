package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

func TestOpenDSN(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t) // migrated; migrating again is a no-op
	require.NoError(t, postgres.Migrate(ctx, dsn))
	db, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	defer db.Close()
	store := pgtest.StoreOn(db)
	require.NoError(t, store.Ping(ctx))
	require.NoError(t, store.Listen(ctx))

	done := make(chan error, 1)
	go func() { done <- store.WaitForAttempts(ctx, time.Hour) }()
	c, _, err := store.CreateCall(ctx, newCall(1), "")
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("WaitForAttempts was not woken")
	}
	got, err := store.GetCall(ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, c.ID, got.ID)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(t.Context(), "postgres://%zz")
	requireCode(t, controller.EINVALID, err)
	_, err = postgres.Open(t.Context(), "postgres://callgate@127.0.0.1:1/callgate?sslmode=disable&connect_timeout=5")
	requireCode(t, controller.EUNAVAILABLE, err)
}
