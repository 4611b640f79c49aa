package dialer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/calltest"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// labGate is the compliance gate with the lab preset: any hour, valid
// numbers, 15 calls per number per day.
func labGate(t *testing.T) controller.Gatekeeper {
	t.Helper()
	p, ok := compliance.Preset("lab")
	require.True(t, ok)
	g, err := compliance.New(dialer.PolicySource(p))
	require.NoError(t, err)
	return g
}

type bundle struct {
	svc   *dialer.Service
	sw    *fakeSwitch
	store controller.CallStore
	w     *calltest.Watcher
}

func setup(t *testing.T, limits dialer.SwitchLimits, tweak ...func(*dialer.Config, *fakeSwitch)) *bundle {
	t.Helper()
	store := pgtest.New(t)
	w := calltest.New(10 * time.Second)
	sw := newFakeSwitch("fs1")
	cfg := dialer.Config{Owner: "test-" + t.Name(), PollInterval: 50 * time.Millisecond, RefusalDelay: time.Millisecond,
		OnCallUpdate: w.Observe, Gate: labGate(t)}
	for _, f := range tweak {
		f(&cfg, sw)
	}
	svc, err := dialer.New(cfg, store)
	require.NoError(t, err)
	sw.sink = svc
	svc.AddSwitch(sw, limits)
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Cleanup(func() { cancel(); svc.Stop() })
	return &bundle{svc: svc, sw: sw, store: store, w: w}
}

func (b *bundle) call(t *testing.T, to string) controller.Call {
	t.Helper()
	c, created, err := b.svc.CreateCall(context.Background(), controller.CreateCallRequest{To: to, From: "+12125550100"})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, controller.CallQueued, c.State)
	return c
}

func TestCallOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()

	answered := b.call(t, "+12125551001")
	busy := b.call(t, "+12125551003")

	got := b.w.WaitState(t, answered.ID, controller.CallCompleted)
	require.Equal(t, 3, got.Billsec)
	require.Equal(t, "NORMAL_CLEARING", got.HangupCause)
	stored, err := b.svc.GetCall(ctx, "", answered.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallCompleted, stored.State)
	require.Equal(t, 3, stored.Billsec)
	require.NotNil(t, stored.AnsweredAt)
	events, err := b.svc.CallEvents(ctx, "", answered.ID)
	require.NoError(t, err)
	var path []controller.CallState
	for _, e := range events {
		path = append(path, e.ToState)
	}
	require.Equal(t, []controller.CallState{controller.CallOriginating, controller.CallRinging, controller.CallAnswered, controller.CallCompleted}, path)

	got = b.w.WaitState(t, busy.ID, controller.CallFailed)
	require.Equal(t, "USER_BUSY", got.HangupCause)
}

func TestSessionLimitKeepsAttemptsQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{MaxSessions: 1})
	first := b.call(t, "+12125551005") // answers and stays up
	b.w.WaitState(t, first.ID, controller.CallAnswered)
	second := b.call(t, "+12125551005")

	// The second call must wait in the queue while the first holds the only
	// session.
	c, err := b.svc.GetCall(context.Background(), "", second.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallQueued, c.State)

	b.sw.end(first.ID, true)
	b.w.WaitState(t, first.ID, controller.CallCompleted)
	b.w.WaitState(t, second.ID, controller.CallAnswered)
	require.Equal(t, 1, b.sw.originateCount(second.ID))
	b.sw.mu.Lock()
	defer b.sw.mu.Unlock()
	require.Zero(t, b.sw.busiest, "an originate arrived while the only session was taken")
}

func TestSwitchRefusalRequeues(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{}, func(_ *dialer.Config, sw *fakeSwitch) { sw.refuseNext = 2 })
	c := b.call(t, "+12125551001")
	got := b.w.WaitState(t, c.ID, controller.CallCompleted)
	require.Equal(t, 3, b.sw.originateCount(c.ID), "two refusals, then dialled")
	require.Equal(t, "NORMAL_CLEARING", got.HangupCause)
}

func TestRefusalsEventuallyFail(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{}, func(cfg *dialer.Config, sw *fakeSwitch) { cfg.MaxRefusals = 2; sw.refuseNext = 100 })
	c := b.call(t, "+12125551001")
	got := b.w.WaitState(t, c.ID, controller.CallFailed)
	require.Equal(t, "DESTINATION_OUT_OF_ORDER", got.HangupCause)
	require.Equal(t, 3, b.sw.originateCount(c.ID))
}

func TestNotSentIsRetriedAmbiguousIsNot(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{}, func(_ *dialer.Config, sw *fakeSwitch) { sw.notSentNext = 1 })
	c := b.call(t, "+12125551001")
	b.w.WaitState(t, c.ID, controller.CallCompleted)
	require.Equal(t, 2, b.sw.originateCount(c.ID))
	require.Equal(t, c.ID, <-b.sw.sent)

	b.sw.mu.Lock()
	b.sw.ambiguous = true
	b.sw.mu.Unlock()
	amb := b.call(t, "+12125551001")
	require.Equal(t, amb.ID, <-b.sw.sent)
	// The link comes back; the switch has no such channel: the call failed
	// somewhere callgate could not see, and it must never be sent again.
	b.sw.reconnect()
	got := b.w.WaitState(t, amb.ID, controller.CallFailed)
	require.True(t, got.Reconciled)
	require.Equal(t, 1, b.sw.originateCount(amb.ID))
}

func TestReconcileAfterLinkDrop(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	up := b.call(t, "+12125551005")      // answered, stays up
	ringing := b.call(t, "+12125551009") // ringing
	b.w.WaitState(t, up.ID, controller.CallAnswered)
	b.w.WaitState(t, ringing.ID, controller.CallRinging)

	// Both end while the link is down: their hangup events are lost.
	b.sw.end(up.ID, false)
	b.sw.end(ringing.ID, false)
	b.sw.reconnect()

	got := b.w.WaitState(t, up.ID, controller.CallCompleted)
	require.True(t, got.Reconciled)
	got = b.w.WaitState(t, ringing.ID, controller.CallFailed)
	require.True(t, got.Reconciled)
}

func TestRestartAdoptsInFlightCalls(t *testing.T) {
	t.Parallel()
	store := pgtest.New(t)
	ctx := context.Background()
	w := calltest.New(10 * time.Second)
	start := func(owner string) (*dialer.Service, *fakeSwitch, context.CancelFunc) {
		sw := newFakeSwitch("fs1")
		svc, err := dialer.New(dialer.Config{Owner: owner, PollInterval: 20 * time.Millisecond, LeaseTTL: time.Second,
			OnCallUpdate: w.Observe, Gate: labGate(t)}, store)
		require.NoError(t, err)
		sw.sink = svc
		svc.AddSwitch(sw, dialer.SwitchLimits{})
		cctx, cancel := context.WithCancel(ctx)
		svc.Start(cctx)
		return svc, sw, cancel
	}
	svc1, sw1, cancel1 := start("first")
	c, _, err := svc1.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551005", From: "+12125550100"})
	require.NoError(t, err)
	w.WaitState(t, c.ID, controller.CallAnswered)
	cancel1()
	svc1.Stop() // releases the lease: the next instance takes over at once

	svc2, sw2, cancel2 := start("second")
	defer func() { cancel2(); svc2.Stop() }()
	// The new owner sees the channel still up on the switch and keeps it.
	sw2.mu.Lock()
	sw2.live[c.ID] = sw1.live[c.ID]
	sw2.mu.Unlock()
	sw2.reconnect()
	select {
	case id := <-sw2.tracked:
		require.Equal(t, c.ID, id)
	case <-time.After(10 * time.Second):
		t.Fatal("the new owner never adopted the in-flight call")
	}
	_, err = svc2.HangupCall(ctx, "", c.ID, "NORMAL_CLEARING")
	require.NoError(t, err)
	got := w.WaitState(t, c.ID, controller.CallCompleted)
	require.Equal(t, 5, got.Billsec)
	require.Zero(t, sw2.originateCount(c.ID), "an adopted call is never originated again")
}

func TestCreateCallValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	tests := []struct {
		req   controller.CreateCallRequest
		field string
	}{
		{controller.CreateCallRequest{From: "+12125550100"}, "to"},
		{controller.CreateCallRequest{To: "555-1234", From: "+12125550100"}, "to"},
		{controller.CreateCallRequest{To: "+12125551001\n", From: "+12125550100"}, "to"},
		{controller.CreateCallRequest{To: "+12125551001"}, "from"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", Switch: "nope"}, "switch"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", TimeoutSeconds: -1}, "timeout_seconds"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", CallerIDName: "a\nb"}, "caller_id_name"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", Variables: map[string]string{"a,b": "x"}}, "variables"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", Variables: map[string]string{"api_on_answer": "hupall"}}, "variables"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", Variables: map[string]string{"cg_x": "a}b"}}, "variables.cg_x"},
		{controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", CallerIDName: "${uuid}"}, "caller_id_name"},
	}
	for i, tt := range tests {
		_, _, err := b.svc.CreateCall(ctx, tt.req)
		require.Error(t, err, "case %d", i)
		require.Equal(t, tt.field, controller.ErrorField(err), "case %d: %v", i, err)
	}
	page, err := b.svc.ListCalls(ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Calls, "rejected requests change nothing")
}

func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	req := controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", IdempotencyKey: "k-1"}
	var wg sync.WaitGroup
	ids := make([]controller.CallID, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := b.svc.CreateCall(ctx, req)
			require.NoError(t, err)
			ids[i] = c.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	req.To = "+12125551003"
	_, _, err := b.svc.CreateCall(ctx, req)
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err))
}

func TestHangupQueuedAndLive(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{MaxSessions: 1})
	ctx := context.Background()
	live := b.call(t, "+12125551005")
	b.w.WaitState(t, live.ID, controller.CallAnswered)
	queued := b.call(t, "+12125551005") // held back by the session limit

	c, err := b.svc.HangupCall(ctx, "", queued.ID, "")
	require.NoError(t, err)
	require.Equal(t, controller.CallCanceled, c.State)

	_, err = b.svc.HangupCall(ctx, "", live.ID, "NOT_A_CAUSE")
	require.Equal(t, "cause", controller.ErrorField(err))
	_, err = b.svc.HangupCall(ctx, "", live.ID, "NORMAL_CLEARING")
	require.NoError(t, err)
	b.w.WaitState(t, live.ID, controller.CallCompleted)
	_, err = b.svc.HangupCall(ctx, "", live.ID, "")
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err))
	_, err = b.svc.HangupCall(ctx, "", controller.CallID(fmt.Sprintf("%08d-0000-0000-0000-000000000000", 1)), "")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
	require.Zero(t, b.sw.originateCount(queued.ID))
}

// dialBlocker wraps a gate and blocks every dial-time check once armed, as a
// refusal or a cap reached between creation and dialling would.
type dialBlocker struct {
	inner controller.Gatekeeper
	armed atomic.Bool
}

func (g *dialBlocker) Check(ctx context.Context, req controller.CheckRequest, l controller.Lookup) (controller.Decision, error) {
	d, err := g.inner.Check(ctx, req, l)
	if req.Stage == controller.StageDial && g.armed.Load() {
		d.Allow, d.Reasons = false, []string{controller.ReasonRefused}
	}
	return d, err
}

func TestDialTimeCheckBlocks(t *testing.T) {
	t.Parallel()
	gate := &dialBlocker{inner: labGate(t)}
	b := setup(t, dialer.SwitchLimits{MaxSessions: 1}, func(cfg *dialer.Config, _ *fakeSwitch) { cfg.Gate = gate })
	first := b.call(t, "+12125551005") // holds the only session
	b.w.WaitState(t, first.ID, controller.CallAnswered)
	second := b.call(t, "+12125551001") // allowed now, waits for the session
	require.True(t, second.Decision.Allow)

	gate.armed.Store(true) // the rules change before it is dialled
	b.sw.end(first.ID, true)
	got := b.w.WaitState(t, second.ID, controller.CallBlocked)
	require.Equal(t, []string{controller.ReasonRefused}, got.Decision.Reasons)
	require.Zero(t, b.sw.originateCount(second.ID), "a call blocked at dial time never reaches the switch")

	a, err := b.svc.GetAttempt(context.Background(), "", second.ID)
	require.NoError(t, err)
	require.Equal(t, "blocked", a.Status)
	require.False(t, a.DialDecision.Allow)
	c, err := b.svc.GetCall(context.Background(), "", second.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallBlocked, c.State)
}

func TestBlockedAtCreateNeverDialled(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	var last controller.Call
	for i := range 16 {
		c, _, err := b.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551003", From: "+12125550100"})
		require.NoError(t, err)
		if i < 15 {
			require.Equal(t, controller.CallQueued, c.State, "call %d", i)
		}
		last = c
	}
	require.Equal(t, controller.CallBlocked, last.State)
	require.Equal(t, []string{controller.ReasonCapDaily}, last.Decision.Reasons)
	require.Zero(t, b.sw.originateCount(last.ID))
}
