package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

// heldCreations holds a store's creation writers until want creations are
// waiting, so that they meet in one group, and records the groups' sizes.
type heldCreations struct {
	queued  chan struct{} // closed once want creations wait
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func holdCreations(s *postgres.Store, want int) *heldCreations {
	h := &heldCreations{queued: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	postgres.SetCreateGroupHooks(s,
		func(pending int) {
			if pending >= want {
				once.Do(func() { close(h.queued) })
			}
		},
		func() { <-h.release },
		func(size int) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.sizes = append(h.sizes, size)
		})
	return h
}

// run starts each creation in its own goroutine, lets the writers go once
// all wait, and returns the results in order.
func (h *heldCreations) run(t *testing.T, s *postgres.Store, reqs []gatedReq) []gatedRes {
	t.Helper()
	out := make([]gatedRes, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			ctx := r.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			out[i].c, out[i].created, out[i].d, out[i].err = s.CreateCallGated(ctx, r.c, r.hash, r.decide)
		})
	}
	<-h.queued
	for _, r := range reqs {
		if r.cancel != nil {
			r.cancel()
		}
	}
	close(h.release)
	wg.Wait()
	return out
}

func (h *heldCreations) groupSizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(slices.Values(h.sizes))
}

type gatedReq struct {
	c      controller.Call
	hash   string
	decide postgres.DecideFunc
	ctx    context.Context
	cancel context.CancelFunc // called once all wait, before the writers go
}

type gatedRes struct {
	c       controller.Call
	created bool
	d       controller.Decision
	err     error
}

// TestCreationsMeetInOneGroup: creations waiting together are decided and
// written in one transaction, each with its own outcome — an allow, a
// block, a failed decision (nothing written for it), one idempotency key
// used twice (one call), a decision that panics (its creation fails, not
// the process) — and a second call to a number already in the
// group is decided after the first is committed, so the cap counts it.
func TestCreationsMeetInOneGroup(t *testing.T) {
	b := setup(t)
	boom := errors.New("boom")
	keyed := func(i int) controller.Call {
		c := newCall(i)
		c.IdempotencyKey = "same-key"
		return c
	}
	capped := newCall(9)
	reqs := []gatedReq{
		{c: newCall(1), decide: allow},
		{c: newCall(2), decide: block(controller.ReasonRefused)},
		{c: newCall(3), decide: func(context.Context, controller.Lookup) (controller.Decision, error) {
			return controller.Decision{}, boom
		}},
		{c: keyed(4), hash: "h", decide: allow},
		{c: keyed(5), hash: "h", decide: allow},
		{c: capped, decide: capDecider(capped.To, startOfDay(), 1)},
		{c: capped, decide: capDecider(capped.To, startOfDay(), 1)},
		{c: newCall(6), decide: func(context.Context, controller.Lookup) (controller.Decision, error) {
			panic("a rule's bug")
		}},
	}
	h := holdCreations(b.store, len(reqs))
	res := h.run(t, b.store, reqs)

	require.Equal(t, []int{1, 7}, h.groupSizes(), "the twin number waits for a group of its own")
	require.NoError(t, res[0].err)
	require.True(t, res[0].created)
	require.Equal(t, controller.CallQueued, res[0].c.State)
	require.NotZero(t, res[0].c.AttemptID)
	require.NoError(t, res[1].err)
	require.True(t, res[1].created)
	require.Equal(t, controller.CallBlocked, res[1].c.State)
	require.ErrorIs(t, res[2].err, boom)
	_, err := b.store.GetCall(b.ctx, controller.DefaultTenant, res[2].c.ID)
	requireCode(t, controller.ENOTFOUND, err)

	require.NoError(t, res[3].err)
	require.NoError(t, res[4].err)
	require.True(t, res[3].created != res[4].created, "one call for the key")
	require.Equal(t, res[3].c.ID, res[4].c.ID)

	require.NoError(t, res[5].err)
	require.NoError(t, res[6].err)
	require.ElementsMatch(t, []bool{true, false}, []bool{res[5].d.Allow, res[6].d.Allow}, "a cap of one: the second sees the first")
	for _, r := range res[5:7] {
		if !r.d.Allow {
			require.Equal(t, []string{controller.ReasonCapDaily}, r.d.Reasons)
			require.Equal(t, controller.CallBlocked, r.c.State)
		}
	}
	require.Equal(t, 1, gateCount(t, b, capped.To, startOfDay()))
	requireCode(t, controller.EINTERNAL, res[7].err)
	require.Contains(t, res[7].err.Error(), "a rule's bug")
	require.False(t, res[7].created)

	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Len(t, page.Calls, 5)
	for _, r := range res {
		if r.err != nil {
			continue
		}
		got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, r.c.ID)
		require.NoError(t, err)
		require.Equal(t, r.c.State, got.State)
		require.Equal(t, r.c.AttemptID, got.AttemptID)
		a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, r.c.ID)
		require.NoError(t, err)
		require.NotNil(t, a.Decision)
		require.Equal(t, got.State == controller.CallQueued, a.Decision.Allow)
	}
}

// TestCreationGroupFailingWholeIsRunOneByOne: one creation that fails the
// group's statement (an unknown tenant) gets its own error; the others are
// written.
func TestCreationGroupFailingWholeIsRunOneByOne(t *testing.T) {
	b := setup(t)
	reg := prometheus.NewRegistry()
	require.NoError(t, b.store.RegisterMetrics(reg))
	stranger := newCall(2)
	stranger.TenantID = "nobody"
	reqs := []gatedReq{{c: newCall(1), decide: allow}, {c: stranger, decide: allow}, {c: newCall(3), decide: allow}}
	h := holdCreations(b.store, len(reqs))
	res := h.run(t, b.store, reqs)

	families, err := reg.Gather()
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, f := range families {
		switch f.GetName() {
		case "callgate_creation_groups_failed_total":
			require.EqualValues(t, 1, f.GetMetric()[0].GetCounter().GetValue())
		case "callgate_creation_group_size":
			hist := f.GetMetric()[0].GetHistogram()
			require.EqualValues(t, 1, hist.GetSampleCount(), "one group")
			require.EqualValues(t, 3, hist.GetSampleSum(), "of three")
		default:
			continue
		}
		seen[f.GetName()] = true
	}
	require.Len(t, seen, 2, "both metrics exported")

	require.Equal(t, []int{3}, h.groupSizes())
	require.NoError(t, res[0].err)
	require.True(t, res[0].created)
	requireCode(t, controller.EINVALID, res[1].err)
	require.Equal(t, "tenant_id", controller.ErrorField(res[1].err))
	require.NoError(t, res[2].err)
	require.True(t, res[2].created)
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Len(t, page.Calls, 2)
}

type callerKey struct{}

// TestCreationWhoseCallerLeftIsNotStarted: a creation whose caller gave up
// while it waited is answered with the context's error and not written; a
// decision in a group sees what its own caller's context carries.
func TestCreationWhoseCallerLeftIsNotStarted(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mine := context.WithValue(context.Background(), callerKey{}, "mine")
	reqs := []gatedReq{{c: newCall(1), decide: allow, ctx: ctx, cancel: cancel},
		{c: newCall(2), ctx: mine, decide: func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			if v, _ := ctx.Value(callerKey{}).(string); v != "mine" {
				return controller.Decision{}, errors.New("the decision does not see its caller's context")
			}
			return allow(ctx, l)
		}}}
	h := holdCreations(b.store, len(reqs))
	res := h.run(t, b.store, reqs)

	require.ErrorIs(t, res[0].err, context.Canceled)
	require.NoError(t, res[1].err)
	require.True(t, res[1].created)
	require.Equal(t, []int{1}, h.groupSizes())
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Len(t, page.Calls, 1)
}

// TestRecheckThatPanicsFailsItsOwnCall: at dial time too, a decision that
// panics fails its own call, and the rest of the batch is decided.
func TestRecheckThatPanicsFailsItsOwnCall(t *testing.T) {
	b := setup(t)
	var calls []controller.Call
	for i := range 2 {
		c, _, _, err := b.store.CreateCallGated(b.ctx, newCall(i), "", allow)
		require.NoError(t, err)
		calls = append(calls, c)
	}
	res := b.store.RecheckAttempts(b.ctx, []controller.Recheck{
		{Call: calls[0], Decide: func(context.Context, controller.Lookup) (controller.Decision, error) { panic("a rule's bug") }},
		{Call: calls[1], Decide: allow},
	})
	requireCode(t, controller.EINTERNAL, res[0].Err)
	require.NoError(t, res[1].Err)
	require.True(t, res[1].Decision.Allow)
	a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, calls[0].ID)
	require.NoError(t, err)
	require.Nil(t, a.DialDecision, "nothing written for the call whose decision panicked")
}
