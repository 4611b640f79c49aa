package schedule_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/schedule"
)

// nightly is the purge's default spec, read in UTC here.
const nightly = "17 3 * * *"

// t0 is a minute before the first firing every test sees.
var (
	t0     = time.Date(2026, 3, 2, 3, 16, 0, 0, time.UTC)
	fire1  = time.Date(2026, 3, 2, 3, 17, 0, 0, time.UTC)
	waitUp = 10 * time.Second // the longest a test waits for an event
)

// clock is a controller's fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bundle is one database shared by two controllers, each with its own pool.
type bundle struct {
	ctx    context.Context
	db     *postgres.DB
	stores [2]*postgres.Store
}

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cfg := pgtest.Config(t)
	b := &bundle{ctx: ctx}
	for i := range b.stores {
		db, err := postgres.OpenConfig(ctx, cfg.Copy())
		require.NoError(t, err)
		t.Cleanup(db.Close)
		if i == 0 {
			require.NoError(t, db.Migrate(ctx))
			b.db = db
		}
		b.stores[i] = pgtest.StoreOn(db)
	}
	return b
}

// controller returns a scheduler named owner on store i, with its own clock
// at t0 and job registered.
func (b *bundle) controller(t *testing.T, i int, owner string, job schedule.Job) (*schedule.Scheduler, *clock) {
	t.Helper()
	return b.controllerWith(t, schedule.Config{Store: b.stores[i], Owner: owner}, job)
}

func (b *bundle) controllerWith(t *testing.T, cfg schedule.Config, job schedule.Job) (*schedule.Scheduler, *clock) {
	t.Helper()
	c := &clock{t: t0}
	cfg.Now = c.Now
	s, err := schedule.New(cfg)
	require.NoError(t, err)
	if job.Location == nil {
		job.Location = time.UTC
	}
	require.NoError(t, s.Add(job))
	return s, c
}

// runs lists the job's recorded firings, newest first.
func (b *bundle) runs(t *testing.T, job string) []controller.JobRun {
	t.Helper()
	list, err := b.stores[0].ListJobRuns(b.ctx, job, 0)
	require.NoError(t, err)
	return list
}

// TestRunsOncePerFiring: two controllers wake for the same firing (their
// clocks a little apart): the job runs once, on the controller that
// claimed it, and its outcome and duration are recorded.
func TestRunsOncePerFiring(t *testing.T) {
	b := setup(t)
	var ran atomic.Int32
	scheds := make([]*schedule.Scheduler, 2)
	clocks := make([]*clock, 2)
	for i, owner := range []string{"ctl-a", "ctl-b"} {
		scheds[i], clocks[i] = b.controller(t, i, owner, schedule.Job{Name: "purge", Spec: nightly,
			Run: func(context.Context) error {
				ran.Add(1)
				clocks[i].Advance(90 * time.Second) // the job's work
				return nil
			}})
	}
	fired := func(day int) []controller.JobRun {
		t.Helper()
		var (
			wg   sync.WaitGroup
			runs [2][]controller.JobRun
		)
		for i, s := range scheds {
			wg.Go(func() {
				now := fire1.AddDate(0, 0, day).Add(time.Duration(200+500*i) * time.Millisecond)
				runs[i] = s.RunDue(b.ctx, now)
			})
		}
		wg.Wait()
		return append(runs[0], runs[1]...)
	}

	got := fired(0)
	require.Len(t, got, 1)
	require.EqualValues(t, 1, ran.Load())
	require.Equal(t, controller.JobOK, got[0].Status)
	require.True(t, got[0].FireAt.Equal(fire1), "%s", got[0].FireAt)
	require.Equal(t, 90*time.Second, got[0].Duration)

	list := b.runs(t, "purge")
	require.Len(t, list, 1)
	require.Equal(t, got[0].Owner, list[0].Owner)
	require.Equal(t, controller.JobOK, list[0].Status)
	require.Equal(t, 90*time.Second, list[0].Duration)
	require.NotNil(t, list[0].FinishedAt)

	// Waking again for the same firing does nothing.
	require.Empty(t, fired(0))
	require.EqualValues(t, 1, ran.Load())

	// The next night: once again.
	require.Len(t, fired(1), 1)
	require.EqualValues(t, 2, ran.Load())
	require.Len(t, b.runs(t, "purge"), 2)
}

// TestInterruptedNotRerun: a controller claimed a firing and died mid-run.
// The firing is reported interrupted and nobody runs it again; the next
// firing runs.
func TestInterruptedNotRerun(t *testing.T) {
	b := setup(t)
	var ran atomic.Int32
	s, _ := b.controller(t, 1, "ctl-b", schedule.Job{Name: "purge", Spec: nightly,
		Run: func(context.Context) error { ran.Add(1); return nil }})

	_, won, err := b.stores[0].ClaimJobRun(b.ctx, "purge", fire1, "ctl-dead")
	require.NoError(t, err)
	require.True(t, won)
	pgtest.KillJobRun(t, b.db, "purge", fire1) // its heartbeat stopped

	require.Empty(t, s.RunDue(b.ctx, fire1.Add(time.Second)))
	require.Zero(t, ran.Load(), "an interrupted firing is not rerun")
	list := b.runs(t, "purge")
	require.Len(t, list, 1)
	require.Equal(t, controller.JobInterrupted, list[0].Status)
	require.Equal(t, "ctl-dead", list[0].Owner)

	next := s.RunDue(b.ctx, fire1.AddDate(0, 0, 1))
	require.Len(t, next, 1)
	require.Equal(t, controller.JobOK, next[0].Status)
	require.EqualValues(t, 1, ran.Load())
	list = b.runs(t, "purge")
	require.Equal(t, []controller.JobStatus{controller.JobOK, controller.JobInterrupted},
		[]controller.JobStatus{list[0].Status, list[1].Status})
}

// TestSkippedWhileRunning: a firing that comes while the previous run goes
// on (on another controller) is recorded skipped, not run alongside.
func TestSkippedWhileRunning(t *testing.T) {
	b := setup(t)
	started, release := make(chan struct{}), make(chan struct{})
	var ran atomic.Int32
	job := func(context.Context) error {
		if ran.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	}
	a, _ := b.controller(t, 0, "ctl-a", schedule.Job{Name: "export", Spec: "* * * * *", Run: job})
	c, _ := b.controller(t, 1, "ctl-b", schedule.Job{Name: "export", Spec: "* * * * *", Run: job})

	done := make(chan []controller.JobRun, 1)
	go func() { done <- a.RunDue(b.ctx, fire1) }()
	select {
	case <-started:
	case <-time.After(waitUp):
		t.Fatal("the first run did not start")
	}
	require.Empty(t, c.RunDue(b.ctx, fire1.Add(time.Minute)))
	close(release)
	select {
	case runs := <-done:
		require.Len(t, runs, 1)
		require.Equal(t, controller.JobOK, runs[0].Status)
	case <-time.After(waitUp):
		t.Fatal("the first run did not end")
	}
	require.EqualValues(t, 1, ran.Load())
	list := b.runs(t, "export")
	require.Len(t, list, 2)
	require.Equal(t, controller.JobSkipped, list[0].Status)
	require.Equal(t, "ctl-b", list[0].Owner)
	require.Contains(t, list[0].Error, "03:17Z was still running")
	require.Equal(t, controller.JobOK, list[1].Status)
}

// TestOutcomes: errors are recorded masked, panics as errors, and missed
// firings are not run one by one: only the latest.
func TestOutcomes(t *testing.T) {
	b := setup(t)
	s, err := schedule.New(schedule.Config{Store: b.stores[0], Owner: "ctl-a", Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	require.NoError(t, s.Add(schedule.Job{Name: "fails", Spec: nightly, Location: time.UTC,
		Run: func(context.Context) error { return errors.New("export of +15551234567 refused") }}))
	require.NoError(t, s.Add(schedule.Job{Name: "panics", Spec: nightly, Location: time.UTC,
		Run: func(context.Context) error { panic("boom") }}))
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	require.NoError(t, s.Add(schedule.Job{Name: "zoned", Spec: "0 2 * * *", Location: ny,
		Run: func(context.Context) error { return nil }}))
	require.Equal(t, []string{"fails", "panics", "zoned"}, s.Jobs())

	runs := s.RunDue(b.ctx, fire1.AddDate(0, 0, 3)) // three nights missed
	require.Len(t, runs, 3)
	require.Equal(t, controller.JobError, runs[0].Status)
	require.Equal(t, "export of ****4567 refused", runs[0].Error)
	require.True(t, runs[0].FireAt.Equal(fire1.AddDate(0, 0, 3)), "only the latest missed firing: %s", runs[0].FireAt)
	require.Equal(t, controller.JobError, runs[1].Status)
	require.Equal(t, "panic: boom", runs[1].Error)
	// 02:00 in New York on 5 March (EST) is 07:00 UTC: the latest at or
	// before 03:17 UTC on the 5th is the 4th's.
	require.True(t, runs[2].FireAt.Equal(time.Date(2026, 3, 4, 7, 0, 0, 0, time.UTC)), "%s", runs[2].FireAt)
	require.Len(t, b.runs(t, "fails"), 1)
	require.Equal(t, "export of ****4567 refused", b.runs(t, "fails")[0].Error)
}

// renewSpy signals each heartbeat renewal.
type renewSpy struct {
	controller.JobRunStore
	renewed chan struct{}
}

func (r renewSpy) RenewJobRun(ctx context.Context, job string, fireAt time.Time, owner string) error {
	err := r.JobRunStore.RenewJobRun(ctx, job, fireAt, owner)
	if err == nil {
		select {
		case r.renewed <- struct{}{}:
		default:
		}
	}
	return err
}

func TestHeartbeatRenewed(t *testing.T) {
	b := setup(t)
	spy := renewSpy{JobRunStore: b.stores[0], renewed: make(chan struct{}, 1)}
	s, _ := b.controllerWith(t, schedule.Config{Store: spy, Owner: "ctl-a", Heartbeat: time.Millisecond},
		schedule.Job{Name: "purge", Spec: nightly, Run: func(ctx context.Context) error {
			select {
			case <-spy.renewed:
				return nil
			case <-time.After(waitUp):
				return errors.New("no heartbeat while running")
			}
		}})
	runs := s.RunDue(b.ctx, fire1)
	require.Len(t, runs, 1)
	require.Equal(t, controller.JobOK, runs[0].Status, runs[0].Error)
}

func TestAddAndSpecs(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"17 3 * * *", "@daily", "CRON_TZ=Europe/Paris 17 3 * * *", "*/5 * * * 1-5"} {
		require.NoError(t, schedule.CheckSpec(spec), spec)
	}
	for _, spec := range []string{"", "every night", "@every 1h", "CRON_TZ=Nowhere/Else 17 3 * * *", "0 17 3 * * *"} {
		require.Equal(t, controller.EINVALID, controller.ErrorCode(schedule.CheckSpec(spec)), spec)
	}

	_, err := schedule.New(schedule.Config{Owner: "ctl-a"})
	require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
	s, err := schedule.New(schedule.Config{Store: renewSpy{}, Owner: "ctl-a"})
	require.NoError(t, err)
	noop := func(context.Context) error { return nil }
	require.NoError(t, s.Add(schedule.Job{Name: "purge", Spec: nightly, Run: noop}))
	for _, j := range []schedule.Job{
		{Name: "purge", Spec: nightly, Run: noop},                                                // twice
		{Name: "export", Spec: nightly},                                                          // no func
		{Name: "export", Spec: "@every 1h", Run: noop},                                           // every
		{Name: "export", Spec: "CRON_TZ=Europe/Paris 17 3 * * *", Location: time.UTC, Run: noop}, // two zones
		{Spec: nightly, Run: noop},                                                               // no name
	} {
		require.Equal(t, controller.EINVALID, controller.ErrorCode(s.Add(j)), "%+v", j)
	}
	s.Start(t.Context())
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(s.Add(schedule.Job{Name: "late", Spec: nightly, Run: noop})))
	s.Stop()
	s.Stop()
}
