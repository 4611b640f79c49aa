package main

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/schedule"
)

// jobsCmd runs `callgate jobs args…` and returns its output.
func jobsCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), append([]string{"jobs"}, args...), func(string) string { return "" }, &out, &out)
	return out.String(), err
}

// TestPurgeRunsOnceAcrossControllers: two controllers declare the same
// off-peak jobs and wake for the purge's firing: one runs it, and `callgate
// jobs list` says which.
func TestPurgeRunsOnceAcrossControllers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	policy, err := loadPolicy("lab")
	require.NoError(t, err)
	fire := time.Date(2026, 3, 2, 3, 17, 0, 0, time.Local) // the default "17 3 * * *"
	var scheds []*schedule.Scheduler
	for _, id := range []string{"ctl-a", "ctl-b"} {
		db, err := postgres.Open(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(db.Close)
		cfg := DefaultConfig()
		cfg.InstanceID = id
		m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
		s, err := m.newJobs(postgres.NewStore(db), policy, func() time.Time { return fire.Add(-time.Minute) })
		require.NoError(t, err)
		require.Equal(t, []string{purgeJob}, s.Jobs(), "the off-peak jobs")
		scheds = append(scheds, s)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		runs []controller.JobRun
	)
	for i, s := range scheds {
		wg.Go(func() {
			got := s.RunDue(ctx, fire.Add(time.Duration(i+1)*300*time.Millisecond))
			mu.Lock()
			runs = append(runs, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Len(t, runs, 1, "exactly one controller runs the purge")
	require.Equal(t, controller.JobOK, runs[0].Status, runs[0].Error)

	out, err := jobsCmd(t, "list", "--database-url", dsn)
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^JOB\s+FIRED AT\s+RUN BY\s+OUTCOME\s+DURATION\s+ERROR$`, out)
	require.Regexp(t, `(?m)^retention-purge\s+`+fire.UTC().Format(time.RFC3339)+`\s+`+runs[0].Owner+`\s+ok\s+\S+\s+-$`, out)

	out, err = jobsCmd(t, "list", "--database-url", dsn, "--job", "export")
	require.NoError(t, err)
	require.NotContains(t, out, purgeJob)
}

func TestJobsCommandErrors(t *testing.T) {
	t.Parallel()
	_, err := jobsCmd(t)
	require.ErrorContains(t, err, "list")
	_, err = jobsCmd(t, "list", "--limit", "0")
	require.ErrorContains(t, err, "--limit")
	_, err = jobsCmd(t, "list", "extra")
	require.ErrorContains(t, err, "unexpected argument")
	out, err := jobsCmd(t, "--help")
	require.NoError(t, err)
	require.Contains(t, out, "interrupted")
}

func TestPurgeScheduleInvalid(t *testing.T) {
	t.Parallel()
	policy, err := loadPolicy("lab")
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Media.PurgeSchedule = "@every 1h"
	m := &Main{Config: cfg}
	_, err = m.newJobs(&postgres.Store{}, policy, nil)
	require.ErrorContains(t, err, "media.purge_schedule")
}
