package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestAgentClaimsAndStates(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 2, controller.Campaign{MaxConcurrent: 5, MaxCPS: 100})
	var agents []controller.Agent
	for _, name := range []string{"ann", "bob", "cat"} {
		a, err := b.store.CreateAgent(b.ctx, controller.Agent{TenantID: controller.DefaultTenant, Name: name,
			Endpoint: "user/" + name, WrapSeconds: 30})
		require.NoError(t, err)
		require.Equal(t, controller.AgentOffline, a.State)
		agents = append(agents, a)
	}
	other, err := b.store.CreateAgent(b.ctx, controller.Agent{TenantID: controller.DefaultTenant, Name: "dan",
		Endpoint: "user/dan", CampaignIDs: []string{"00000000-0000-0000-0000-000000000001"}})
	require.NoError(t, err)

	k, err := b.store.CampaignAgents(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, controller.AgentCounts{}, k)
	_, ok, err := b.store.ClaimAgent(b.ctx, controller.DefaultTenant, c.ID, controller.CallID(uuid.NewString()))
	require.NoError(t, err)
	require.False(t, ok, "nobody logged in")

	for _, a := range append(agents[:2:2], other) {
		_, err := b.store.MoveAgent(b.ctx, controller.DefaultTenant, a.ID,
			[]controller.AgentState{controller.AgentOffline}, controller.AgentAvailable)
		require.NoError(t, err)
	}
	k, err = b.store.CampaignAgents(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, controller.AgentCounts{LoggedIn: 2, Available: 2}, k, "dan takes another campaign's calls")

	// Many calls race for two agents: two win.
	var (
		mu     sync.Mutex
		claims = map[string]int{}
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			cl, ok, err := b.store.ClaimAgent(b.ctx, controller.DefaultTenant, c.ID, controller.CallID(uuid.NewString()))
			if assertNoError(t, err) && ok {
				mu.Lock()
				claims[cl.AgentID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, claims, 2)
	for id, n := range claims {
		require.Equal(t, 1, n, "agent %s claimed once", id)
	}
	got, err := b.store.GetAgent(b.ctx, controller.DefaultTenant, agents[0].ID)
	require.NoError(t, err)
	require.Equal(t, controller.AgentOnCall, got.State)
	require.Equal(t, 1, got.Calls)

	_, err = b.store.MoveAgent(b.ctx, controller.DefaultTenant, got.ID,
		[]controller.AgentState{controller.AgentAvailable, controller.AgentPaused}, controller.AgentOffline)
	requireCode(t, controller.ECONFLICT, err)

	require.NoError(t, b.store.FinishAgentCall(b.ctx, got.ID, got.CallID, true))
	got, err = b.store.GetAgent(b.ctx, controller.DefaultTenant, got.ID)
	require.NoError(t, err)
	require.Equal(t, controller.AgentWrapUp, got.State)
	require.NotEmpty(t, got.CallID)
	n, err := b.store.EndWrapUps(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n, "30 s of wrap-up have not passed")
	got, err = b.store.MoveAgent(b.ctx, controller.DefaultTenant, got.ID,
		[]controller.AgentState{controller.AgentWrapUp}, controller.AgentAvailable)
	require.NoError(t, err)
	require.Empty(t, got.CallID)
	require.GreaterOrEqual(t, got.LoggedInSeconds, got.OnCallSeconds+got.WrapUpSeconds)

	_, err = b.store.GetAgent(b.ctx, "other", got.ID)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestReleaseAgentsAfterACrash(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 2)
	var ids []string
	for i, call := range calls {
		a, err := b.store.CreateAgent(b.ctx, controller.Agent{TenantID: controller.DefaultTenant,
			Name: []string{"ann", "bob"}[i], Endpoint: "user/x", WrapSeconds: 30})
		require.NoError(t, err)
		_, err = b.store.MoveAgent(b.ctx, controller.DefaultTenant, a.ID, []controller.AgentState{controller.AgentOffline}, controller.AgentAvailable)
		require.NoError(t, err)
		_, ok, err := b.store.ClaimAgent(b.ctx, controller.DefaultTenant, "", call.ID)
		require.NoError(t, err)
		require.True(t, ok)
		ids = append(ids, a.ID)
	}
	n, err := b.store.ReleaseAgents(b.ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "their calls are live")

	// Both calls end; the controller that would have reported the bridges'
	// ends died. The answered one leaves its agent in wrap-up.
	now := time.Now()
	answered := calls[0]
	answered.State, answered.AnsweredAt, answered.EndedAt = controller.CallCompleted, &now, &now
	failed := calls[1]
	failed.State, failed.HangupCause, failed.EndedAt = controller.CallFailed, "NO_ANSWER", &now
	require.NoError(t, b.store.SaveCallUpdates(b.ctx, []controller.CallUpdate{
		{Call: answered, From: controller.CallQueued, Event: controller.ChannelEvent{CallID: answered.ID, Kind: controller.EventHangup, At: now}},
		{Call: failed, From: controller.CallQueued, Event: controller.ChannelEvent{CallID: failed.ID, Kind: controller.EventHangup, At: now}},
	}))
	n, err = b.store.ReleaseAgents(b.ctx, time.Hour)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	got := map[controller.AgentState]int{}
	for _, id := range ids {
		a, err := b.store.GetAgent(b.ctx, controller.DefaultTenant, id)
		require.NoError(t, err)
		got[a.State]++
	}
	require.Equal(t, map[controller.AgentState]int{controller.AgentWrapUp: 1, controller.AgentAvailable: 1}, got)
}
