package postgres_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// capDecider is a small stand-in for the compliance gate: it blocks number
// if it is refused (reason refused) or has limit or more attempts allowed
// since since (reason cap_daily).
func capDecider(number string, since time.Time, limit int) postgres.DecideFunc {
	return func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		return decideCap(ctx, l, number, since, limit)
	}
}

func decideCap(ctx context.Context, l controller.Lookup, number string, since time.Time, limit int) (controller.Decision, error) {
	now := time.Now()
	d := controller.Decision{Stage: controller.StageCreate, Number: number, DecidedAt: now,
		PolicyID: "test", PolicyVersion: 1}
	r, err := l.ActiveRefusal(ctx, number, now)
	if err != nil {
		return d, err
	}
	v := controller.Verdict{Rule: "refusal", Allow: r == nil}
	if r != nil {
		v.Reason, v.Evidence = controller.ReasonRefused, []string{r.ID}
	}
	d.Verdicts = append(d.Verdicts, v)
	n, err := l.CountAttempts(ctx, number, since)
	if err != nil {
		return d, err
	}
	v = controller.Verdict{Rule: "cap", Allow: n < limit}
	if !v.Allow {
		v.Reason = controller.ReasonCapDaily
	}
	d.Verdicts = append(d.Verdicts, v)
	for _, v := range d.Verdicts {
		if !v.Allow {
			d.Reasons = append(d.Reasons, v.Reason)
		}
	}
	d.Allow = len(d.Reasons) == 0
	return d, nil
}

func allow(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
	return controller.Decision{Allow: true, Stage: controller.StageCreate, Verdicts: []controller.Verdict{{Rule: "ok", Allow: true}}}, nil
}

func block(reasons ...string) postgres.DecideFunc {
	return func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		d := controller.Decision{Stage: controller.StageCreate, Reasons: reasons}
		for _, r := range reasons {
			d.Verdicts = append(d.Verdicts, controller.Verdict{Rule: r, Reason: r})
		}
		return d, nil
	}
}

func startOfDay() time.Time {
	now := time.Now()
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
}

func TestCreateCallGatedAllowed(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	c, created, d, err := b.store.CreateCallGated(b.ctx, req, "", allow)
	require.NoError(t, err)
	require.True(t, created)
	require.True(t, d.Allow)
	require.Equal(t, controller.CallQueued, c.State)
	require.NotZero(t, c.AttemptID)
	require.Nil(t, c.EndedAt)

	a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, c.AttemptID, a.ID)
	require.Equal(t, "queued", a.Status)
	require.Equal(t, req.To, a.ToNumber)
	require.NotNil(t, a.AllowedAt)
	require.NotNil(t, a.Decision)
	require.True(t, a.Decision.Allow)
	require.Empty(t, a.BlockedReasons)

	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner", 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, c.ID, claimed[0].ID)
}

func TestCreateCallGatedBlocked(t *testing.T) {
	b := setup(t)
	c, created, d, err := b.store.CreateCallGated(b.ctx, newCall(1), "",
		block(controller.ReasonDNCList, controller.ReasonOutsideHours))
	require.NoError(t, err)
	require.True(t, created)
	require.False(t, d.Allow)
	require.Equal(t, controller.CallBlocked, c.State)
	require.NotNil(t, c.EndedAt)

	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallBlocked, got.State)
	a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, "blocked", a.Status)
	require.Equal(t, []string{controller.ReasonDNCList, controller.ReasonOutsideHours}, a.BlockedReasons)
	require.Nil(t, a.AllowedAt)
	require.Equal(t, d.Reasons, a.Decision.Reasons)

	// A blocked attempt is never claimed, and cannot be canceled.
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner", 10)
	require.NoError(t, err)
	require.Empty(t, claimed)
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, c.ID)
	requireCode(t, controller.ECONFLICT, err)

	// Reasons come from the verdicts when the decision lists none.
	c, _, _, err = b.store.CreateCallGated(b.ctx, newCall(2), "", func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{Verdicts: []controller.Verdict{{Rule: "a", Allow: true},
			{Rule: "b", Reason: controller.ReasonHoliday}, {Rule: "c", Allow: true, Review: true, Reason: controller.ReasonNumberSuspicious}}}, nil
	})
	require.NoError(t, err)
	a, err = b.store.GetAttempt(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, []string{controller.ReasonHoliday, controller.ReasonNumberSuspicious}, a.BlockedReasons)
}

func TestCreateCallGatedIdempotency(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		name   string
		decide postgres.DecideFunc
		state  controller.CallState
	}{
		{"allowed", allow, controller.CallQueued},
		{"blocked", block(controller.ReasonRefused), controller.CallBlocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newCall(1)
			req.IdempotencyKey = "key-" + tc.name
			first, created, d1, err := b.store.CreateCallGated(b.ctx, req, "h1", tc.decide)
			require.NoError(t, err)
			require.True(t, created)

			calls := 0
			counting := func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
				calls++
				return allow(ctx, l)
			}
			again, created, d2, err := b.store.CreateCallGated(b.ctx, req, "h1", counting)
			require.NoError(t, err)
			require.False(t, created)
			require.Zero(t, calls, "a replay does not decide again")
			require.Equal(t, first.ID, again.ID)
			require.Equal(t, tc.state, again.State)
			require.Equal(t, d1.Allow, d2.Allow)
			require.Equal(t, d1.Reasons, d2.Reasons)

			_, _, _, err = b.store.CreateCallGated(b.ctx, req, "h2", counting)
			requireCode(t, controller.ECONFLICT, err)
			require.Zero(t, calls)
		})
	}
}

func TestCreateCallGatedIdempotencyConcurrent(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.IdempotencyKey = "same"
	var wg sync.WaitGroup
	var created atomic.Int32
	ids := make([]controller.CallID, 10)
	for i := range ids {
		wg.Go(func() {
			c, ok, _, err := b.store.CreateCallGated(b.ctx, req, "h", allow)
			if !assertNoError(t, err) {
				return
			}
			if ok {
				created.Add(1)
			}
			ids[i] = c.ID
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, created.Load())
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
}

// assertNoError reports err from a goroutine without stopping the test.
func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestCreateCallGatedRejects(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.To = "15550001234"
	_, _, _, err := b.store.CreateCallGated(b.ctx, req, "", allow)
	requireCode(t, controller.EINVALID, err)
	require.Equal(t, "to", controller.ErrorField(err))

	req = newCall(1)
	req.ID = "nope"
	_, _, _, err = b.store.CreateCallGated(b.ctx, req, "", allow)
	requireCode(t, controller.EINVALID, err)

	req = newCall(1)
	req.TenantID = "nobody"
	_, _, _, err = b.store.CreateCallGated(b.ctx, req, "", allow)
	requireCode(t, controller.EINVALID, err)
	require.Equal(t, "tenant_id", controller.ErrorField(err))

	// A failing gate writes nothing.
	boom := errors.New("boom")
	_, _, _, err = b.store.CreateCallGated(b.ctx, newCall(1), "", func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{}, boom
	})
	require.ErrorIs(t, err, boom)

	// A decision about another number is a bug: nothing is written.
	_, _, _, err = b.store.CreateCallGated(b.ctx, newCall(1), "", func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{Allow: true, Number: "+15559999999"}, nil
	})
	requireCode(t, controller.EINTERNAL, err)

	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Calls)
}

// gateCount reads CountAttempts for number through a dry run.
func gateCount(t *testing.T, b *bundle, number string, since time.Time) int {
	t.Helper()
	var n int
	_, err := b.store.Gate(b.ctx, "", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		var err error
		n, err = l.CountAttempts(ctx, number, since)
		return controller.Decision{}, err
	})
	require.NoError(t, err)
	return n
}

// TestCreateCallGatedCapIsExact races 100 creations for one number whose cap
// is 15: the count the gate reads and the attempt it writes are atomic, so
// exactly 15 are allowed.
func TestCreateCallGatedCapIsExact(t *testing.T) {
	b := setup(t)
	raceCap(t, b.ctx, []*postgres.Store{b.store}, 100)
	requireCapOutcome(t, b.ctx, b.store, 100)
}

// TestCreateCallGatedCapIsExactAcrossProcesses does the same from two pools
// on one schema, as two controller processes sharing a database would.
func TestCreateCallGatedCapIsExactAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cfg := pgtest.Config(t)
	db1, err := postgres.OpenConfig(ctx, cfg.Copy())
	require.NoError(t, err)
	t.Cleanup(db1.Close)
	require.NoError(t, db1.Migrate(ctx))
	// The second process's sessions default to REPEATABLE READ: the gate
	// must not depend on the database's default isolation.
	cfg2 := cfg.Copy()
	cfg2.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	db2, err := postgres.OpenConfig(ctx, cfg2)
	require.NoError(t, err)
	t.Cleanup(db2.Close)
	s1, s2 := pgtest.StoreOn(db1), pgtest.StoreOn(db2)

	raceCap(t, ctx, []*postgres.Store{s1, s2}, 50)
	requireCapOutcome(t, ctx, s2, 100)
}

const capNumber = "+15550001000"

// raceCap starts perStore concurrent gated creations to capNumber on each
// store at once, with a cap of 15 per day.
func raceCap(t *testing.T, ctx context.Context, stores []*postgres.Store, perStore int) {
	t.Helper()
	since := startOfDay()
	decide := capDecider(capNumber, since, 15)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range stores {
		for i := range perStore {
			wg.Go(func() {
				<-start
				c := newCall(i)
				c.To = capNumber
				_, created, _, err := s.CreateCallGated(ctx, c, "", decide)
				if assertNoError(t, err) && !created {
					t.Errorf("call not created")
				}
			})
		}
	}
	close(start)
	wg.Wait()
}

func requireCapOutcome(t *testing.T, ctx context.Context, s *postgres.Store, total int) {
	t.Helper()
	page, err := s.ListCalls(ctx, controller.CallFilter{To: capNumber, Limit: 200})
	require.NoError(t, err)
	require.Len(t, page.Calls, total)
	states := map[controller.CallState]int{}
	for _, c := range page.Calls {
		states[c.State]++
		a, err := s.GetAttempt(ctx, controller.DefaultTenant, c.ID)
		require.NoError(t, err)
		require.NotNil(t, a.Decision)
		if c.State == controller.CallBlocked {
			require.Equal(t, "blocked", a.Status)
			require.Equal(t, []string{controller.ReasonCapDaily}, a.BlockedReasons)
			require.Equal(t, []string{controller.ReasonCapDaily}, a.Decision.Reasons)
		} else {
			require.Equal(t, "queued", a.Status)
			require.True(t, a.Decision.Allow)
		}
	}
	require.Equal(t, map[controller.CallState]int{controller.CallQueued: 15, controller.CallBlocked: total - 15}, states)
	b := &bundle{ctx: ctx, store: s}
	require.Equal(t, 15, gateCount(t, b, capNumber, startOfDay()))
}

func TestCountAttempts(t *testing.T) {
	b := setup(t)
	const number = "+15550002000"
	mk := func(d postgres.DecideFunc) controller.Call {
		c := newCall(0)
		c.To = number
		c, _, _, err := b.store.CreateCallGated(b.ctx, c, "", d)
		require.NoError(t, err)
		return c
	}
	before := time.Now().Add(-time.Minute)
	var allowed []controller.Call
	for range 5 {
		allowed = append(allowed, mk(allow))
	}
	mk(block(controller.ReasonCapDaily))
	other := newCall(1)
	_, _, _, err := b.store.CreateCallGated(b.ctx, other, "", allow) // another number
	require.NoError(t, err)
	_, _, err = b.store.CreateCall(b.ctx, controller.Call{To: number}, "") // ungated: holds no slot
	require.NoError(t, err)
	require.Equal(t, 5, gateCount(t, b, number, before))

	// Canceled attempts free their slot; claimed, sent and done ones keep it.
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, allowed[0].ID)
	require.NoError(t, err)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner", 2)
	require.NoError(t, err)
	require.NoError(t, b.store.MarkOriginating(b.ctx, ids(claimed[:1]), "fs1", time.Now()))
	c := claimed[0]
	c.State = controller.CallOriginating
	_, err = controller.Apply(&c, controller.ChannelEvent{Kind: controller.EventOriginateFailed, HangupCause: "USER_BUSY", At: time.Now()})
	require.NoError(t, err)
	require.NoError(t, b.store.SaveCallUpdates(b.ctx, []controller.CallUpdate{{Call: c, From: controller.CallOriginating,
		Event: controller.ChannelEvent{CallID: c.ID, Kind: controller.EventOriginateFailed}}}))
	require.Equal(t, 4, gateCount(t, b, number, before))

	// since is inclusive of later slots only.
	require.Equal(t, 0, gateCount(t, b, number, time.Now().Add(time.Minute)))
}

func TestGateIsADryRun(t *testing.T) {
	b := setup(t)
	d, err := b.store.Gate(b.ctx, "", "+15550003000", func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		n, err := l.CountAttempts(ctx, "+15550003000", time.Time{})
		return controller.Decision{Allow: n == 0, Stage: "check"}, err
	})
	require.NoError(t, err)
	require.True(t, d.Allow)
	require.Equal(t, "check", d.Stage)
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Calls)

	_, err = b.store.Gate(b.ctx, "", "5550003000", allow)
	requireCode(t, controller.EINVALID, err)

	boom := errors.New("boom")
	_, err = b.store.Gate(b.ctx, "", "+15550003000", func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{}, boom
	})
	require.ErrorIs(t, err, boom)
}

func TestRecheckAttempt(t *testing.T) {
	b := setup(t)
	const number = "+15550005000"
	create := func() controller.Call {
		c := newCall(0)
		c.To = number
		c, _, _, err := b.store.CreateCallGated(b.ctx, c, "", capDecider(number, startOfDay(), 2))
		require.NoError(t, err)
		require.Equal(t, controller.CallQueued, c.State)
		return c
	}
	c1, c2 := create(), create()
	a1, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c1.ID)
	require.NoError(t, err)

	// The attempt being rechecked is not counted: with a cap of 2 and two
	// attempts queued, both pass again at dial time.
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner", 1)
	require.NoError(t, err)
	require.Equal(t, c1.ID, claimed[0].ID)
	var seen int
	d, err := b.store.RecheckAttempt(b.ctx, c1.ID, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		var err error
		seen, err = l.CountAttempts(ctx, number, startOfDay())
		if err != nil {
			return controller.Decision{}, err
		}
		d, err := decideCap(ctx, l, number, startOfDay(), 2)
		d.Stage = controller.StageDial
		return d, err
	})
	require.NoError(t, err)
	require.True(t, d.Allow)
	require.Equal(t, 1, seen)
	after, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c1.ID)
	require.NoError(t, err)
	require.Equal(t, "claimed", after.Status)
	require.NotNil(t, after.DialDecision)
	require.Equal(t, controller.StageDial, after.DialDecision.Stage)
	require.True(t, after.Decision.Allow)
	require.False(t, after.AllowedAt.Before(*a1.AllowedAt), "the slot moves to the dial time")
	require.NoError(t, b.store.MarkOriginating(b.ctx, []controller.CallID{c1.ID}, "fs1", time.Now()))

	// The number was put on a do-not-call list meanwhile: the recheck blocks
	// c2, stores why, and the dialer can no longer send it.
	d, err = b.store.RecheckAttempt(b.ctx, c2.ID, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		return controller.Decision{Stage: controller.StageDial, Reasons: []string{controller.ReasonDNCInternal}}, nil
	})
	require.NoError(t, err)
	require.False(t, d.Allow)
	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c2.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallBlocked, got.State)
	require.NotNil(t, got.EndedAt)
	a2, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c2.ID)
	require.NoError(t, err)
	require.Equal(t, "blocked", a2.Status)
	require.Equal(t, []string{controller.ReasonDNCInternal}, a2.BlockedReasons)
	require.True(t, a2.Decision.Allow)
	require.False(t, a2.DialDecision.Allow)
	events, err := b.store.ListCallEvents(b.ctx, controller.DefaultTenant, c2.ID)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, controller.CallBlocked, events[0].ToState)
	require.Equal(t, controller.EventKind("compliance_blocked"), events[0].Event.Kind)
	require.Contains(t, events[0].Event.Detail, controller.ReasonDNCInternal)
	claimed, err = b.store.ClaimAttempts(b.ctx, "fs1", "owner", 10)
	require.NoError(t, err)
	require.Empty(t, claimed)
	require.Equal(t, 1, gateCount(t, b, number, startOfDay()), "a blocked attempt frees its slot")

	// Calls that left the queue, or never existed, are not rechecked.
	_, err = b.store.RecheckAttempt(b.ctx, c1.ID, allow)
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.RecheckAttempt(b.ctx, c2.ID, allow)
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.RecheckAttempt(b.ctx, controller.CallID(uuid.NewString()), allow)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.RecheckAttempt(b.ctx, "nope", allow)
	requireCode(t, controller.ENOTFOUND, err)

	// A failing gate at dial time writes nothing.
	c3 := create()
	boom := errors.New("boom")
	_, err = b.store.RecheckAttempt(b.ctx, c3.ID, func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{}, boom
	})
	require.ErrorIs(t, err, boom)
	a3, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c3.ID)
	require.NoError(t, err)
	require.Equal(t, "queued", a3.Status)
	require.Nil(t, a3.DialDecision)
}

func TestRecheckLegacyAttempt(t *testing.T) {
	b := setup(t)
	// An attempt created without the gate takes a slot once it passes the
	// dial-time check.
	c, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550006000"}, "")
	require.NoError(t, err)
	require.Equal(t, 0, gateCount(t, b, "+15550006000", time.Time{}))
	_, err = b.store.RecheckAttempt(b.ctx, c.ID, allow)
	require.NoError(t, err)
	require.Equal(t, 1, gateCount(t, b, "+15550006000", time.Time{}))
}

func TestGetAttemptNotFound(t *testing.T) {
	b := setup(t)
	c, _, _, err := b.store.CreateCallGated(b.ctx, newCall(1), "", allow)
	require.NoError(t, err)
	_, err = b.store.GetAttempt(b.ctx, "other", c.ID)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetAttempt(b.ctx, controller.DefaultTenant, "nope")
	requireCode(t, controller.ENOTFOUND, err)
}

func TestRecheckAttemptsBatch(t *testing.T) {
	b := setup(t)
	const numberX, numberY, numberZ, numberW = "+15550007001", "+15550007002", "+15550007003", "+15550007004"
	create := func(number string) controller.Call {
		c := newCall(0)
		c.To = number
		c, _, _, err := b.store.CreateCallGated(b.ctx, c, "", capDecider(number, startOfDay(), 2))
		require.NoError(t, err)
		return c
	}
	x1, x2, y, z, w := create(numberX), create(numberX), create(numberY), create(numberZ), create(numberW)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner", 10)
	require.NoError(t, err)
	require.Len(t, claimed, 5)
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, z.ID)
	require.NoError(t, err)

	boom := errors.New("boom")
	var seenX2 int
	bad := x1
	bad.To = "not a number"
	res := b.store.RecheckAttempts(b.ctx, []controller.Recheck{
		{Call: x1, Decide: block(controller.ReasonDNCInternal)},
		{Call: y, Decide: func(context.Context, controller.Lookup) (controller.Decision, error) {
			return controller.Decision{}, boom
		}},
		// x2 is to the same number as x1: it is decided after x1's block is
		// written, so its cap of 1 does not count x1.
		{Call: x2, Decide: func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			var err error
			if seenX2, err = l.CountAttempts(ctx, numberX, startOfDay()); err != nil {
				return controller.Decision{}, err
			}
			return decideCap(ctx, l, numberX, startOfDay(), 1)
		}},
		{Call: z, Decide: allow},
		{Call: w, Decide: allow},
		{Call: bad, Decide: allow},
	})
	require.Len(t, res, 6)
	require.NoError(t, res[0].Err)
	require.False(t, res[0].Decision.Allow)
	require.ErrorIs(t, res[1].Err, boom)
	require.NoError(t, res[2].Err)
	require.True(t, res[2].Decision.Allow, "x2 must not count the blocked x1: %+v", res[2].Decision)
	require.Equal(t, 0, seenX2)
	requireCode(t, controller.ECONFLICT, res[3].Err)
	require.NoError(t, res[4].Err)
	require.True(t, res[4].Decision.Allow)
	requireCode(t, controller.EINVALID, res[5].Err)

	status := func(c controller.Call) controller.Attempt {
		t.Helper()
		a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c.ID)
		require.NoError(t, err)
		return a
	}
	a := status(x1)
	require.Equal(t, "blocked", a.Status)
	require.Equal(t, []string{controller.ReasonDNCInternal}, a.BlockedReasons)
	events, err := b.store.ListCallEvents(b.ctx, controller.DefaultTenant, x1.ID)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, controller.EventKind("compliance_blocked"), events[0].Event.Kind)
	a = status(y)
	require.Equal(t, "claimed", a.Status, "a failed decision writes nothing")
	require.Nil(t, a.DialDecision)
	for _, c := range []controller.Call{x2, w} {
		a = status(c)
		require.Equal(t, "claimed", a.Status)
		require.NotNil(t, a.DialDecision)
		require.True(t, a.DialDecision.Allow)
	}
	require.Equal(t, "canceled", status(z).Status)
	require.NoError(t, b.store.MarkOriginating(b.ctx, []controller.CallID{x2.ID, w.ID}, "fs1", time.Now()))
}

// A batch takes its numbers' locks in one global order (the lock keys'),
// whatever the batch's order, so two batches can never wait for each other
// in a cycle: while the first key's lock is held elsewhere, a batch waiting
// for it holds none of the others.
func TestRecheckAttemptsLockOrder(t *testing.T) {
	b := setup(t)
	pool := b.store.DB().Pool()
	var calls []controller.Call
	for i := range 2 {
		c, _, _, err := b.store.CreateCallGated(b.ctx, newCall(8000+i), "", allow)
		require.NoError(t, err)
		calls = append(calls, c)
	}
	const keySQL = `SELECT hashtextextended('callgate number ' || current_schema() || ' ' || $1::text, 0)`
	keys := make([]int64, 2)
	for i, c := range calls {
		require.NoError(t, pool.QueryRow(b.ctx, keySQL, c.To).Scan(&keys[i]))
	}
	first, second := 0, 1
	if keys[1] < keys[0] {
		first, second = 1, 0
	}

	// Hold the first key's lock, then recheck the batch in the order that
	// puts the second number first.
	holder, err := pool.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(b.ctx) }()
	_, err = holder.Exec(b.ctx, `SELECT pg_advisory_xact_lock($1)`, keys[first])
	require.NoError(t, err)
	done := make(chan []controller.RecheckResult)
	go func() {
		done <- b.store.RecheckAttempts(b.ctx, []controller.Recheck{
			{Call: calls[second], Decide: allow}, {Call: calls[first], Decide: allow}})
	}()
	// Wait until the batch is waiting for the held lock.
	for {
		var waiting bool
		require.NoError(t, pool.QueryRow(b.ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
				AND classid = (($1::bigint >> 32) & 4294967295)::text::oid
				AND objid = ($1::bigint & 4294967295)::text::oid)`, keys[first]).Scan(&waiting))
		if waiting {
			break
		}
		runtime.Gosched()
	}
	var got bool
	require.NoError(t, holder.QueryRow(b.ctx, `SELECT pg_try_advisory_xact_lock($1)`, keys[second]).Scan(&got))
	require.True(t, got, "the batch took the second key's lock before the first's")
	require.NoError(t, holder.Rollback(b.ctx))
	for _, r := range <-done {
		require.NoError(t, r.Err)
	}
}

// TestLookupHintNeverChangesAnswers: a hint that skips reading ahead only
// costs a round trip — a decision that asks anyway gets the same answer.
func TestLookupHintNeverChangesAnswers(t *testing.T) {
	b := setup(t)
	const number = "+15550009000"
	id, err := b.store.CreateConsent(b.ctx, controller.Consent{TenantID: controller.DefaultTenant, Number: number,
		Purpose: controller.PurposeMarketing, Source: "api_import", GivenAt: time.Now()})
	require.NoError(t, err)
	require.NoError(t, b.store.AddOwnedNumber(b.ctx, controller.DefaultTenant, "+15550001111"))
	for _, hint := range []controller.LookupHint{{}, {NoConsents: true, NoCallerID: true}} {
		ctx := controller.WithLookupHint(b.ctx, hint)
		_, err := b.store.Gate(ctx, "", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			c, err := l.ActiveConsent(ctx, "", number, controller.PurposeMarketing)
			require.NoError(t, err)
			require.NotNil(t, c, "hint %+v", hint)
			require.Equal(t, id, c.ID)
			owned, err := l.CallerIDOwned(ctx, "", "+15550001111")
			require.NoError(t, err)
			require.True(t, owned, "hint %+v", hint)
			return controller.Decision{}, nil
		})
		require.NoError(t, err)
	}
}
