package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// fire317 is a firing of a nightly job.
var fire317 = time.Date(2026, 3, 2, 3, 17, 0, 0, time.UTC)

// TestClaimJobRunOnce: controllers, each with its own pool, claim one
// firing at once (each with its own clock's seconds): exactly one wins.
func TestClaimJobRunOnce(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Config(t)
	db, err := postgres.OpenConfig(t.Context(), cfg.Copy())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(t.Context()))

	const n = 8
	stores := make([]*postgres.Store, n)
	for i := range stores {
		cfg := cfg.Copy()
		cfg.MaxConns = 1
		db, err := postgres.OpenConfig(t.Context(), cfg)
		require.NoError(t, err)
		defer db.Close()
		stores[i] = postgres.NewStore(db)
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		won   = make([]bool, n)
		errs  = make([]error, n)
	)
	for i, store := range stores {
		wg.Go(func() {
			<-start
			fireAt := fire317.Add(time.Duration(i) * time.Second) // truncated to 03:17
			_, won[i], errs[i] = store.ClaimJobRun(t.Context(), "purge", fireAt, fmt.Sprintf("ctl-%d", i))
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		require.NoError(t, errs[i])
		if won[i] {
			winners++
		}
	}
	require.Equal(t, 1, winners)

	runs, err := postgres.NewStore(db).ListJobRuns(t.Context(), "purge", 0)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.True(t, runs[0].FireAt.Equal(fire317), "%s", runs[0].FireAt)
	require.Equal(t, controller.JobRunning, runs[0].Status)
}

func TestJobRunLifecycle(t *testing.T) {
	b := setup(t)
	run, won, err := b.store.ClaimJobRun(b.ctx, "purge", fire317, "ctl-a")
	require.NoError(t, err)
	require.True(t, won)
	require.Equal(t, controller.JobRunning, run.Status)
	require.False(t, run.StartedAt.IsZero())

	run2, won, err := b.store.ClaimJobRun(b.ctx, "purge", fire317, "ctl-b")
	require.NoError(t, err)
	require.False(t, won, "the firing is ctl-a's")
	require.Equal(t, controller.JobRun{}, run2)

	require.NoError(t, b.store.RenewJobRun(b.ctx, "purge", fire317, "ctl-a"))
	requireCode(t, controller.ENOTFOUND, b.store.RenewJobRun(b.ctx, "purge", fire317, "ctl-b"))
	requireCode(t, controller.ENOTFOUND, b.store.FinishJobRun(b.ctx, controller.JobRun{Job: "purge", FireAt: fire317,
		Owner: "ctl-b", Status: controller.JobOK}))
	requireCode(t, controller.EINVALID, b.store.FinishJobRun(b.ctx, controller.JobRun{Job: "purge", FireAt: fire317,
		Owner: "ctl-a", Status: controller.JobRunning}))
	_, _, err = b.store.ClaimJobRun(b.ctx, "", fire317, "ctl-a")
	requireCode(t, controller.EINVALID, err)

	run.Status, run.Error, run.Duration = controller.JobError, "disk full", 1500*time.Millisecond
	require.NoError(t, b.store.FinishJobRun(b.ctx, run))
	requireCode(t, controller.ENOTFOUND, b.store.FinishJobRun(b.ctx, run)) // finished once

	// The next night's firing, and another job's.
	next := fire317.Add(24 * time.Hour)
	_, won, err = b.store.ClaimJobRun(b.ctx, "purge", next, "ctl-b")
	require.NoError(t, err)
	require.True(t, won)
	_, won, err = b.store.ClaimJobRun(b.ctx, "export", fire317, "ctl-b")
	require.NoError(t, err)
	require.True(t, won)

	runs, err := b.store.ListJobRuns(b.ctx, "purge", 0)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.True(t, runs[0].FireAt.Equal(next), "newest first")
	require.Equal(t, controller.JobRunning, runs[0].Status)
	got := runs[1]
	require.Equal(t, "ctl-a", got.Owner)
	require.Equal(t, controller.JobError, got.Status)
	require.Equal(t, "disk full", got.Error)
	require.Equal(t, 1500*time.Millisecond, got.Duration)
	require.NotNil(t, got.FinishedAt)

	all, err := b.store.ListJobRuns(b.ctx, "", 2)
	require.NoError(t, err)
	require.Len(t, all, 2)
	_, err = b.store.ListJobRuns(b.ctx, "", 1001)
	requireCode(t, controller.EINVALID, err)
}

// TestJobRunSkippedAndInterrupted: a firing while the previous run goes on
// is recorded skipped; once that run's controller died, it is reported
// interrupted, and the next firing runs.
func TestJobRunSkippedAndInterrupted(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	store := postgres.NewStore(db)
	ctx := t.Context()
	_, won, err := store.ClaimJobRun(ctx, "purge", fire317, "ctl-a")
	require.NoError(t, err)
	require.True(t, won)

	second := fire317.Add(time.Minute)
	run, won, err := store.ClaimJobRun(ctx, "purge", second, "ctl-b")
	require.NoError(t, err)
	require.False(t, won)
	require.Equal(t, controller.JobSkipped, run.Status)
	require.Equal(t, "the run fired at 2026-03-02T03:17Z was still running", run.Error)
	require.NotNil(t, run.FinishedAt)

	pgtest.KillJobRun(t, db, "purge", fire317)
	third := fire317.Add(2 * time.Minute)
	run, won, err = store.ClaimJobRun(ctx, "purge", third, "ctl-b")
	require.NoError(t, err)
	require.True(t, won, "a dead run does not block the job")
	require.Equal(t, controller.JobRunning, run.Status)

	runs, err := store.ListJobRuns(ctx, "purge", 0)
	require.NoError(t, err)
	require.Len(t, runs, 3)
	require.Equal(t, []controller.JobStatus{controller.JobRunning, controller.JobSkipped, controller.JobInterrupted},
		[]controller.JobStatus{runs[0].Status, runs[1].Status, runs[2].Status})
	require.Equal(t, "ctl-a", runs[2].Owner)
	require.Nil(t, runs[2].FinishedAt)
}
