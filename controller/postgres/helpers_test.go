package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

type bundle struct {
	ctx   context.Context
	store *postgres.Store
}

// setup gives the test a store on a fresh schema.
func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &bundle{ctx: ctx, store: pgtest.New(t)}
}

// newCall returns a call request to the i-th test number.
func newCall(i int) controller.Call {
	return controller.Call{
		To:           fmt.Sprintf("+1555000%04d", i),
		From:         "+15559990000",
		CallerIDName: "Callgate",
		Timeout:      30 * time.Second,
		Variables:    map[string]string{"campaign": "c1"},
	}
}

// create writes n calls and returns them in creation order.
func (b *bundle) create(t *testing.T, n int) []controller.Call {
	t.Helper()
	calls := make([]controller.Call, n)
	for i := range n {
		c, created, err := b.store.CreateCall(b.ctx, newCall(i), "")
		require.NoError(t, err)
		require.True(t, created)
		calls[i] = c
	}
	return calls
}

// claimAndMark claims up to n attempts on switch sw and marks them originating.
func (b *bundle) claimAndMark(t *testing.T, sw string, n int) []controller.Call {
	t.Helper()
	calls, err := b.store.ClaimAttempts(b.ctx, sw, "owner-a", n)
	require.NoError(t, err)
	require.NoError(t, b.store.MarkOriginating(b.ctx, ids(calls), sw, time.Now()))
	return calls
}

func ids(calls []controller.Call) []controller.CallID {
	out := make([]controller.CallID, len(calls))
	for i, c := range calls {
		out[i] = c.ID
	}
	return out
}

func requireCode(t *testing.T, code string, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, controller.ErrorCode(err), "error: %v", err)
}
