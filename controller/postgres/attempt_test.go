package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

func TestClaimAttemptsRespectsSwitch(t *testing.T) {
	b := setup(t)
	anyReq, fs2Req := newCall(1), newCall(2)
	fs2Req.Switch = "fs2"
	anyCall, _, err := b.store.CreateCall(b.ctx, anyReq, "")
	require.NoError(t, err)
	fs2Call, _, err := b.store.CreateCall(b.ctx, fs2Req, "")
	require.NoError(t, err)

	got, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 10)
	require.NoError(t, err)
	require.Equal(t, []controller.CallID{anyCall.ID}, ids(got))
	require.Equal(t, "fs1", got[0].Switch)
	require.Equal(t, controller.CallQueued, got[0].State)
	require.Equal(t, anyReq.To, got[0].To)

	got, err = b.store.ClaimAttempts(b.ctx, "fs2", "owner-a", 10)
	require.NoError(t, err)
	require.Equal(t, []controller.CallID{fs2Call.ID}, ids(got))

	got, err = b.store.ClaimAttempts(b.ctx, "fs2", "owner-a", 10)
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = b.store.ClaimAttempts(b.ctx, "fs2", "owner-a", 0)
	requireCode(t, controller.EINVALID, err)
}

func TestClaimAttemptsConcurrentClaimersNeverShare(t *testing.T) {
	b := setup(t)
	const total, claimers = 200, 4
	want := ids(b.create(t, total))

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[controller.CallID]int{}
		errs []error
	)
	start := make(chan struct{})
	for i := range claimers {
		wg.Go(func() {
			<-start
			owner := []string{"a", "b", "c", "d"}[i]
			for {
				got, err := b.store.ClaimAttempts(b.ctx, "fs1", owner, 7)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, c := range got {
					seen[c.ID]++
				}
				mu.Unlock()
				if err != nil || len(got) == 0 {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	require.Len(t, seen, total)
	for id, n := range seen {
		require.Equal(t, 1, n, "call %s claimed %d times", id, n)
	}
	got := make([]controller.CallID, 0, total)
	for id := range seen {
		got = append(got, id)
	}
	require.ElementsMatch(t, want, got)
}

func TestClaimAttemptsSkipsNotDue(t *testing.T) {
	b := setup(t)
	c := b.create(t, 1)[0]
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 1)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, b.store.ReleaseAttempt(b.ctx, c.ID, time.Now().Add(time.Hour), "pacing"))
	claimed, err = b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 1)
	require.NoError(t, err)
	require.Empty(t, claimed)

	require.NoError(t, b.store.ReleaseAttempt(b.ctx, c.ID, time.Now().Add(-time.Second), "due again"))
	claimed, err = b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 1)
	require.NoError(t, err)
	require.Equal(t, []controller.CallID{c.ID}, ids(claimed))
}

func TestMarkOriginatingThenSaveCallUpdates(t *testing.T) {
	b := setup(t)
	calls := b.claimAndMark(t, "fs1", 2)
	require.Empty(t, calls)
	b.create(t, 2)
	calls = b.claimAndMark(t, "fs1", 2)
	require.Len(t, calls, 2)

	inFlight, err := b.store.InFlightCalls(b.ctx, "fs1")
	require.NoError(t, err)
	require.ElementsMatch(t, ids(calls), ids(inFlight))
	for _, c := range inFlight {
		require.Equal(t, controller.CallOriginating, c.State)
		require.Equal(t, "fs1", c.Switch)
	}

	// Drive the first call through ringing, answer and hangup, the second to
	// a failure, all in one batch, with the driver's own state machine.
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	c1, c2 := inFlight[0], inFlight[1]
	var ups []controller.CallUpdate
	apply := func(c *controller.Call, ev controller.ChannelEvent) {
		ev.CallID, ev.Switch = c.ID, "fs1"
		from := c.State
		changed, err := controller.Apply(c, ev)
		require.NoError(t, err)
		require.True(t, changed)
		ups = append(ups, controller.CallUpdate{Call: *c, From: from, Event: ev})
	}
	apply(&c1, controller.ChannelEvent{Kind: controller.EventProgress, Name: "CHANNEL_PROGRESS", Sequence: 10, At: t0})
	apply(&c2, controller.ChannelEvent{Kind: controller.EventOriginateFailed, Name: "BACKGROUND_JOB", Sequence: 11,
		At: t0, HangupCause: "USER_BUSY", SIPStatus: 486})
	apply(&c1, controller.ChannelEvent{Kind: controller.EventAnswer, Name: "CHANNEL_ANSWER", Sequence: 12, At: t0.Add(time.Second)})
	apply(&c1, controller.ChannelEvent{Kind: controller.EventHangupComplete, Name: "CHANNEL_HANGUP_COMPLETE", Sequence: 13,
		At: t0.Add(5 * time.Second), HangupCause: "NORMAL_CLEARING", SIPStatus: 200, Billsec: 4, Duration: 5, Answered: true})
	require.NoError(t, b.store.SaveCallUpdates(b.ctx, ups))

	got1, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c1.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallCompleted, got1.State)
	require.Equal(t, "NORMAL_CLEARING", got1.HangupCause)
	require.Equal(t, 200, got1.SIPStatus)
	require.Equal(t, 4, got1.Billsec)
	require.Equal(t, 5, got1.Duration)
	require.NotNil(t, got1.AnsweredAt)
	require.True(t, got1.AnsweredAt.Equal(t0.Add(time.Second)))
	require.True(t, got1.EndedAt.Equal(t0.Add(5*time.Second)))

	got2, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c2.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallFailed, got2.State)
	require.Equal(t, "USER_BUSY", got2.HangupCause)
	require.Nil(t, got2.AnsweredAt)

	inFlight, err = b.store.InFlightCalls(b.ctx, "fs1")
	require.NoError(t, err)
	require.Empty(t, inFlight)

	events, err := b.store.ListCallEvents(b.ctx, controller.DefaultTenant, c1.ID)
	require.NoError(t, err)
	var kinds []controller.EventKind
	for _, e := range events {
		require.Equal(t, c1.ID, e.CallID)
		kinds = append(kinds, e.Event.Kind)
	}
	require.Equal(t, []controller.EventKind{controller.EventOriginateSent, controller.EventProgress,
		controller.EventAnswer, controller.EventHangupComplete}, kinds)
	require.Equal(t, controller.CallQueued, events[0].FromState)
	require.Equal(t, controller.CallOriginating, events[0].ToState)
	require.Equal(t, controller.CallAnswered, events[3].FromState)
	require.Equal(t, controller.CallCompleted, events[3].ToState)
	require.Equal(t, 4, events[3].Event.Billsec)
	require.Equal(t, uint64(13), events[3].Event.Sequence)
	require.False(t, events[3].RecordedAt.IsZero())

	// Terminal calls' attempts are done: cancel still refuses them.
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, c2.ID)
	requireCode(t, controller.ECONFLICT, err)

	// An update for a call that does not exist saves nothing.
	ghost := c1
	ghost.ID = "00000000-0000-0000-0000-000000000001"
	err = b.store.SaveCallUpdates(b.ctx, []controller.CallUpdate{{Call: ghost, From: c1.State,
		Event: controller.ChannelEvent{Kind: controller.EventDestroy}}})
	requireCode(t, controller.ENOTFOUND, err)
}

func TestListCallEventsOrdersBySequence(t *testing.T) {
	b := setup(t)
	b.create(t, 1)
	c := b.claimAndMark(t, "fs1", 1)[0]
	c.State = controller.CallOriginating
	// Stored out of order: sequence 21 before 20, then a synthetic event.
	evs := []controller.ChannelEvent{
		{Kind: controller.EventAnswer, Sequence: 21},
		{Kind: controller.EventProgress, Sequence: 20},
		{Kind: controller.EventReconciledGone},
	}
	for _, ev := range evs {
		ev.CallID = c.ID
		require.NoError(t, b.store.SaveCallUpdates(b.ctx, []controller.CallUpdate{{Call: c, From: c.State, Event: ev}}))
	}
	events, err := b.store.ListCallEvents(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	var kinds []controller.EventKind
	for _, e := range events {
		kinds = append(kinds, e.Event.Kind)
	}
	require.Equal(t, []controller.EventKind{controller.EventOriginateSent, controller.EventProgress,
		controller.EventAnswer, controller.EventReconciledGone}, kinds)
}

func TestReleaseAttempt(t *testing.T) {
	b := setup(t)
	c := b.create(t, 1)[0]
	err := b.store.ReleaseAttempt(b.ctx, "00000000-0000-0000-0000-000000000001", time.Now(), "x")
	requireCode(t, controller.ENOTFOUND, err)

	b.claimAndMark(t, "fs1", 1)
	err = b.store.ReleaseAttempt(b.ctx, c.ID, time.Now(), "too late")
	requireCode(t, controller.ECONFLICT, err)
}

func TestRequeueRefused(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.Switch = "fs2"
	c, _, err := b.store.CreateCall(b.ctx, req, "")
	require.NoError(t, err)

	refused := controller.ChannelEvent{CallID: c.ID, Switch: "fs2", Kind: controller.EventOriginateFailed,
		Name: "BACKGROUND_JOB", HangupCause: "SWITCH_CONGESTION", At: time.Now()}
	err = b.store.RequeueRefused(b.ctx, c.ID, time.Now(), refused)
	requireCode(t, controller.ECONFLICT, err) // still queued

	require.Len(t, b.claimAndMark(t, "fs2", 1), 1)
	require.NoError(t, b.store.RequeueRefused(b.ctx, c.ID, time.Now().Add(-time.Second), refused))
	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallQueued, got.State)
	require.Equal(t, "fs2", got.Switch)

	// It can be claimed again, and only on the switch it asked for.
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 1)
	require.NoError(t, err)
	require.Empty(t, claimed)
	require.Len(t, b.claimAndMark(t, "fs2", 1), 1)

	events, err := b.store.ListCallEvents(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Len(t, events, 3)
	require.Equal(t, controller.EventOriginateFailed, events[1].Event.Kind)
	require.Equal(t, controller.CallQueued, events[1].ToState)
	require.Equal(t, "SWITCH_CONGESTION", events[1].Event.HangupCause)

	err = b.store.RequeueRefused(b.ctx, "00000000-0000-0000-0000-000000000001", time.Now(), refused)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestRecoverClaims(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 3)
	mine, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 1)
	require.NoError(t, err)
	require.Len(t, mine, 1)
	theirs, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-b", 2)
	require.NoError(t, err)
	require.Len(t, theirs, 2)
	require.NoError(t, b.store.MarkOriginating(b.ctx, ids(theirs[:1]), "fs1", time.Now()))

	// Fresh claims are left alone.
	n, err := b.store.RecoverClaims(b.ctx, "owner-a", time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)

	// owner-b's unsent claim is stale (a negative age makes every claim
	// stale); owner-a's own claim and owner-b's sent call are kept.
	n, err = b.store.RecoverClaims(b.ctx, "owner-a", -time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	again, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 10)
	require.NoError(t, err)
	require.Equal(t, []controller.CallID{theirs[1].ID}, ids(again))
	require.ElementsMatch(t, ids(calls), append(ids(mine), theirs[0].ID, theirs[1].ID))
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Config(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { // as if from separate processes: a pool each
			db, err := postgres.OpenConfig(t.Context(), cfg.Copy())
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = db.Migrate(t.Context())
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	db, err := postgres.OpenConfig(t.Context(), cfg.Copy())
	require.NoError(t, err)
	defer db.Close()
	_, _, err = pgtest.StoreOn(db).CreateCall(t.Context(), newCall(1), "")
	require.NoError(t, err)
}

func TestMarkOriginatingRacesCancel(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 60)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", len(calls))
	require.NoError(t, err)
	require.Len(t, claimed, len(calls))

	const batch = 6
	marked := map[controller.CallID]bool{}
	canceled := map[controller.CallID]bool{}
	var wg sync.WaitGroup
	var markErrs, cancelErrs []error
	wg.Go(func() {
		for i := 0; i < len(claimed); i += batch {
			batchIDs := ids(claimed[i : i+batch])
			err := b.store.MarkOriginating(b.ctx, batchIDs, "fs1", time.Now())
			if controller.ErrorCode(err) == controller.ECONFLICT {
				continue
			} else if err != nil {
				markErrs = append(markErrs, err)
			}
			for _, id := range batchIDs {
				marked[id] = true
			}
		}
	})
	wg.Go(func() {
		for i := len(calls) - 1; i >= 0; i -= 2 {
			_, err := b.store.CancelCall(b.ctx, controller.DefaultTenant, calls[i].ID)
			if controller.ErrorCode(err) == controller.ECONFLICT {
				continue
			} else if err != nil {
				cancelErrs = append(cancelErrs, err)
			}
			canceled[calls[i].ID] = true
		}
	})
	wg.Wait()
	require.Empty(t, markErrs)
	require.Empty(t, cancelErrs)
	for _, c := range calls {
		got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
		require.NoError(t, err)
		require.False(t, marked[c.ID] && canceled[c.ID], "call %s both marked and canceled", c.ID)
		switch {
		case marked[c.ID]:
			require.Equal(t, controller.CallOriginating, got.State)
		case canceled[c.ID]:
			require.Equal(t, controller.CallCanceled, got.State)
		default:
			require.Equal(t, controller.CallQueued, got.State) // its batch lost to a cancel
		}
	}
}
