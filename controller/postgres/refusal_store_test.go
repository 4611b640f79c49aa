package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// addTenant records a tenant besides the default one.
func (b *bundle) addTenant(t *testing.T, id string) {
	t.Helper()
	_, err := b.store.DB().Pool().Exec(b.ctx, `INSERT INTO tenants (id) VALUES ($1)`, id)
	require.NoError(t, err)
}

// TestLockNumberCancelsQueuedCalls: a refusal arrives while attempts for the
// number are queued, claimed and already sent, in two tenants. Every call not
// yet sent is canceled in the same transaction; none is left to dial.
func TestLockNumberCancelsQueuedCalls(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	const number = "+15550007000"
	var calls []controller.Call
	for i, tenant := range []string{"default", "acme", "default", "acme", "default"} {
		c := newCall(i)
		c.To, c.TenantID = number, tenant
		if i == 4 {
			c.Switch = "fs2" // stays queued: fs1 claims the others
		}
		c, _, _, err := b.store.CreateCallGated(b.ctx, c, "", allow)
		require.NoError(t, err)
		calls = append(calls, c)
	}
	legacy, _, err := b.store.CreateCall(b.ctx, controller.Call{To: number}, "") // ungated, still queued
	require.NoError(t, err)
	other, _, _, err := b.store.CreateCallGated(b.ctx, newCall(1), "", allow) // another number
	require.NoError(t, err)

	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner", 3) // calls 0, 1, 2
	require.NoError(t, err)
	require.Len(t, claimed, 3)
	require.NoError(t, b.store.MarkOriginating(b.ctx, []controller.CallID{calls[0].ID}, "fs1", time.Now()))

	until := time.Now().Add(90 * 24 * time.Hour)
	id, canceled, err := b.store.LockNumber(b.ctx, "acme", controller.Refusal{Number: number, Source: "ivr",
		CallID: calls[0].ID, Until: &until})
	require.NoError(t, err)
	require.NotEmpty(t, id)
	require.Equal(t, 5, canceled) // calls 1, 2 (claimed), 3, 4 and the legacy one (queued)

	for i, c := range append(calls, legacy) {
		got, err := b.store.GetCall(b.ctx, c.TenantID, c.ID)
		require.NoError(t, err)
		if i == 0 {
			require.Equal(t, controller.CallOriginating, got.State, "a sent call is not canceled")
			continue
		}
		require.Equal(t, controller.CallCanceled, got.State, "call %d", i)
		require.NotNil(t, got.EndedAt)
		a, err := b.store.GetAttempt(b.ctx, c.TenantID, c.ID)
		require.NoError(t, err)
		require.Equal(t, "canceled", a.Status)
		events, err := b.store.ListCallEvents(b.ctx, c.TenantID, c.ID)
		require.NoError(t, err)
		require.Len(t, events, 1)
		require.Equal(t, controller.CallQueued, events[0].FromState)
		require.Equal(t, controller.CallCanceled, events[0].ToState)
		require.Equal(t, controller.EventKind("refusal_canceled"), events[0].Event.Kind)
		require.Equal(t, c.ID, events[0].Event.CallID)
		require.Contains(t, events[0].Event.Detail, id)
		require.False(t, events[0].Event.At.IsZero())
	}
	got, err := b.store.GetCall(b.ctx, other.TenantID, other.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallQueued, got.State, "other numbers are untouched")

	// The claimed calls can no longer be sent.
	err = b.store.MarkOriginating(b.ctx, []controller.CallID{calls[1].ID}, "fs1", time.Now())
	requireCode(t, controller.ECONFLICT, err)
	left, err := b.store.ClaimAttempts(b.ctx, "fs2", "owner", 10)
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, other.ID, left[0].ID)

	refusals, err := b.store.ListRefusals(b.ctx, number)
	require.NoError(t, err)
	require.Len(t, refusals, 1)
	require.Equal(t, id, refusals[0].ID)
	require.Equal(t, "ivr", refusals[0].Source)
	require.Equal(t, calls[0].ID, refusals[0].CallID)
	require.WithinDuration(t, until, *refusals[0].Until, time.Millisecond)
	require.Nil(t, refusals[0].LiftedAt)
}

// TestLockNumberRacesCreateCallGated races gated creations for a number,
// whose gate consults ActiveRefusal, against the refusal of the number: each
// creation either committed before the refusal (and is canceled by it) or
// sees it (and is blocked). No allowed attempt is ever left queued.
func TestLockNumberRacesCreateCallGated(t *testing.T) {
	b := setup(t)
	const number = "+15550008000"
	decide := capDecider(number, time.Time{}, 1000)
	start := make(chan struct{})
	var (
		wg       sync.WaitGroup
		canceled int
	)
	for i := range 40 {
		wg.Go(func() {
			<-start
			c := newCall(i)
			c.To = number
			_, _, _, err := b.store.CreateCallGated(b.ctx, c, "", decide)
			assertNoError(t, err)
		})
		if i == 20 {
			wg.Go(func() {
				<-start
				var err error
				_, canceled, err = b.store.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "agent"})
				assertNoError(t, err)
			})
		}
	}
	close(start)
	wg.Wait()

	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{To: number, Limit: 200})
	require.NoError(t, err)
	require.Len(t, page.Calls, 40)
	states := map[controller.CallState]int{}
	for _, c := range page.Calls {
		states[c.State]++
		if c.State == controller.CallBlocked {
			a, err := b.store.GetAttempt(b.ctx, c.TenantID, c.ID)
			require.NoError(t, err)
			require.Equal(t, []string{controller.ReasonRefused}, a.BlockedReasons)
		}
	}
	require.Zero(t, states[controller.CallQueued], "states: %v", states)
	require.Equal(t, canceled, states[controller.CallCanceled])
	require.Equal(t, 40, states[controller.CallCanceled]+states[controller.CallBlocked])
}

func TestActiveRefusal(t *testing.T) {
	b := setup(t)
	const number = "+15550009000"
	active := func(at time.Time) *controller.Refusal {
		t.Helper()
		var r *controller.Refusal
		_, err := b.store.Gate(b.ctx, "", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			var err error
			r, err = l.ActiveRefusal(ctx, number, at)
			return controller.Decision{}, err
		})
		require.NoError(t, err)
		return r
	}
	now := time.Now()
	require.Nil(t, active(now))

	until := now.Add(time.Hour)
	short, _, err := b.store.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "sms", At: now, Until: &until})
	require.NoError(t, err)
	require.Equal(t, short, active(now).ID)
	require.Nil(t, active(until), "until is exclusive")
	// A refusal counts from the moment it is stored, even if its own time
	// is ahead of the decision's clock.
	require.Equal(t, short, active(now.Add(-time.Minute)).ID)

	forever, _, err := b.store.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "agent"})
	require.NoError(t, err)
	require.Equal(t, forever, active(now).ID, "the longest lock wins")
	require.Equal(t, forever, active(now.Add(10*365*24*time.Hour)).ID)

	lifted, err := b.store.LiftRefusal(b.ctx, controller.DefaultTenant, forever, time.Time{})
	require.NoError(t, err)
	require.NotNil(t, lifted.LiftedAt)
	require.Equal(t, short, active(now).ID)
	_, err = b.store.LiftRefusal(b.ctx, controller.DefaultTenant, forever, time.Time{})
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.LiftRefusal(b.ctx, controller.DefaultTenant, uuid.NewString(), time.Time{})
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.LiftRefusal(b.ctx, controller.DefaultTenant, "nope", time.Time{})
	requireCode(t, controller.ENOTFOUND, err)

	refusals, err := b.store.ListRefusals(b.ctx, number)
	require.NoError(t, err)
	require.Len(t, refusals, 2)
	require.Equal(t, forever, refusals[0].ID, "newest first")
	require.NotNil(t, refusals[0].LiftedAt)
	none, err := b.store.ListRefusals(b.ctx, "+15550009001")
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestLockNumberRejects(t *testing.T) {
	b := setup(t)
	now := time.Now()
	past := now.Add(-time.Hour)
	for name, tc := range map[string]struct {
		r     controller.Refusal
		field string
	}{
		"number":  {controller.Refusal{Number: "15550001234", Source: "ivr"}, "number"},
		"source":  {controller.Refusal{Number: "+15550001234", Source: "email"}, "source"},
		"until":   {controller.Refusal{Number: "+15550001234", Source: "ivr", At: now, Until: &past}, "until"},
		"id":      {controller.Refusal{ID: "x", Number: "+15550001234", Source: "ivr"}, "id"},
		"call id": {controller.Refusal{Number: "+15550001234", Source: "ivr", CallID: "x"}, "call_id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := b.store.LockNumber(b.ctx, "", tc.r)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
	id := uuid.NewString()
	_, _, err := b.store.LockNumber(b.ctx, "", controller.Refusal{ID: id, Number: "+15550001234", Source: "api"})
	require.NoError(t, err)
	_, _, err = b.store.LockNumber(b.ctx, "", controller.Refusal{ID: id, Number: "+15550001234", Source: "api"})
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.ListRefusals(b.ctx, "bad")
	requireCode(t, controller.EINVALID, err)
}
