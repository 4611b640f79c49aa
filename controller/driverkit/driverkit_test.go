package driverkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/driverkit"
)

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	for attempt := range 40 {
		d := driverkit.Backoff(attempt, 200*time.Millisecond, 30*time.Second)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 30*time.Second)
		if attempt == 0 {
			require.LessOrEqual(t, d, 200*time.Millisecond)
		}
	}
}

func TestPacerAndSleepHonourContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, driverkit.SleepCtx(ctx, time.Hour))
	p := &driverkit.Pacer{Interval: time.Hour}
	require.NoError(t, p.Wait(ctx), "the first slot is now")
	require.ErrorIs(t, p.Wait(ctx), context.Canceled, "the second is an hour away")
	require.NoError(t, (&driverkit.Pacer{}).Wait(ctx), "no interval, no pacing")
}
