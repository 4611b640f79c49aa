package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// agentFlow connects every answered call to an agent; a call no agent
// takes within 2 s hears a tone standing in for the identification
// message and is hung up.
const agentFlow = `{"start": "a", "nodes": {"a": {"type": "agent", "tone": "tone_stream://%(200,0,440)"}}}`

// simAgents are agents the test plays: on the switch each is a callee that
// answers and stays on the line until the customer hangs up (switchsim
// scenario 1005); in wrap-up each records the disposition "sale" at once.
type simAgents struct {
	mu  sync.Mutex
	m   *Main
	ids []string
	wg  sync.WaitGroup
}

func (sa *simAgents) onChange(a controller.Agent) {
	if a.State != controller.AgentWrapUp {
		return
	}
	sa.wg.Go(func() {
		// A wrap-up already ended (the agent was quick) is a conflict: fine.
		_, _ = sa.m.Agents().WrapUp(context.Background(), "", a.ID, "sale", map[string]string{"agent": a.Name})
	})
}

func (sa *simAgents) login(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		a, err := sa.m.Agents().CreateAgent(ctx, controller.Agent{Name: fmt.Sprintf("agent%d", i),
			Endpoint: "loopback/1005/callgate-test", WrapSeconds: 60})
		require.NoError(t, err)
		_, err = sa.m.Agents().SetAgentState(ctx, "", a.ID, controller.AgentAvailable)
		require.NoError(t, err)
		sa.mu.Lock()
		sa.ids = append(sa.ids, a.ID)
		sa.mu.Unlock()
	}
}

// agentLeads returns n leads: callees who ring 1 s, answer and talk 3 s
// (scaled: time to connect an agent first), and every fifth one busy.
func agentLeads(n int) string {
	var b strings.Builder
	b.WriteString("phone\n")
	for i := range n {
		suffix := "1009"
		if i%5 == 4 {
			suffix = "1003"
		}
		fmt.Fprintf(&b, "+1212%03d%s\n", 300+i, suffix)
	}
	return b.String()
}

func setupAgents(t *testing.T) (*ivrE2E, *ticks, *simAgents) {
	t.Helper()
	k, sa := newTicks(), &simAgents{}
	x := setupIVR(t, func(m *Main) {
		m.OnCampaignTick = k.tick
		m.OnAgentChange = sa.onChange
		sa.m = m
	})
	x.needSim(t)
	x.putFlow(t, "agents", agentFlow)
	t.Cleanup(sa.wg.Wait)
	return x, k, sa
}

// runAgentCampaign imports n leads (agentLeads) into a new list, runs a
// campaign of the agents flow over it in mode, and returns the campaign and
// its status once every lead is done.
func runAgentCampaign(t *testing.T, x *ivrE2E, k *ticks, name string, mode controller.DialMode, n int) (controller.Campaign, controller.CampaignStatus) {
	t.Helper()
	cs := x.m.Campaigns()
	list, err := cs.CreateLeadList(context.Background(), "", name)
	require.NoError(t, err)
	_, err = cs.RunImport(context.Background(), "", list.ID, strings.NewReader(agentLeads(n)), "", nil)
	require.NoError(t, err)
	c, err := cs.CreateCampaign(context.Background(), controller.Campaign{Name: name, Mode: mode,
		FlowID: "agents", ListIDs: []string{list.ID}, CallerIDs: []string{"+12125550100"},
		Purpose: controller.PurposeService, MaxConcurrent: 50, MaxCPS: 100})
	require.NoError(t, err)
	_, err = cs.TransitionCampaign(context.Background(), "", c.ID, controller.CampaignStart)
	require.NoError(t, err)
	st := waitCampaign(t, k, cs, c.ID, "finished", func(st controller.CampaignStatus) bool {
		return st.Counters.Leads == n && st.Counters.Done == n
	})
	return c, st
}

func TestE2ECampaignProgressiveAgents(t *testing.T) {
	t.Parallel()
	x, k, sa := setupAgents(t)
	sa.login(t, 3)
	cs := x.m.Campaigns()
	c, st := runAgentCampaign(t, x, k, "progressive", controller.ModeProgressive, 40)
	require.Equal(t, map[controller.Outcome]int{controller.OutcomeAnswered: 32, controller.OutcomeBusy: 8}, st.Counters.Outcomes,
		"progressive never abandons")
	require.NotNil(t, st.Pacing)

	taken := map[string]int{}
	leads, err := cs.CampaignLeads(context.Background(), "", c.ID, "", 0, 100)
	require.NoError(t, err)
	for _, l := range leads {
		if l.LastOutcome != controller.OutcomeAnswered {
			continue
		}
		calls, err := cs.LeadAttempts(context.Background(), "", c.ID, l.ID)
		require.NoError(t, err)
		require.Equal(t, "sale", l.Disposition, "the agent's wrap-up is the lead's disposition: %+v", calls)
		require.Len(t, calls, 1)
		require.NotEmpty(t, calls[0].AgentID, "the call went to an agent")
		require.Equal(t, "sale", calls[0].Disposition)
		taken[calls[0].AgentID]++
	}
	total := 0
	for _, id := range sa.ids {
		a, err := x.m.Agents().Agent(context.Background(), "", id)
		require.NoError(t, err)
		require.Equal(t, taken[id], a.Calls, "agent %s", a.Name)
		total += a.Calls
	}
	require.Equal(t, 32, total)

	stats, err := cs.CampaignStats(context.Background(), "", c.ID)
	require.NoError(t, err)
	require.NotNil(t, stats.Metrics.AgentUtilisation)
	require.Greater(t, *stats.Metrics.AgentUtilisation, 0.0)
	require.LessOrEqual(t, *stats.Metrics.AgentUtilisation, 1.0)
	require.Zero(t, stats.Metrics.AbandonRate, "progressive never abandons")
}

func TestE2ECampaignPredictiveAbandons(t *testing.T) {
	t.Parallel()
	x, k, sa := setupAgents(t)
	// One agent, predictive pacing, and callees who all answer: until the
	// pacer has history it dials like progressive; answered calls that find
	// the agent busy for 2 s are abandoned: identified, hung up, not
	// retried, counted.
	sa.login(t, 1)
	cs := x.m.Campaigns()
	c, st := runAgentCampaign(t, x, k, "predictive", controller.ModePredictive, 30)
	answered := st.Counters.Outcomes[controller.OutcomeAnswered]
	abandoned := st.Counters.Outcomes[controller.OutcomeAbandoned]
	require.Equal(t, 24, answered+abandoned)
	require.Equal(t, 6, st.Counters.Outcomes[controller.OutcomeBusy])
	leads, err := cs.CampaignLeads(context.Background(), "", c.ID, "done", 0, 100)
	require.NoError(t, err)
	for _, l := range leads {
		calls, err := cs.LeadAttempts(context.Background(), "", c.ID, l.ID)
		require.NoError(t, err)
		require.Len(t, calls, 1, "no lead is retried")
		switch l.LastOutcome {
		case controller.OutcomeAbandoned:
			require.Empty(t, calls[0].AgentID)
			require.Equal(t, "abandoned", calls[0].Disposition)
		case controller.OutcomeAnswered:
			require.NotEmpty(t, calls[0].AgentID)
		}
	}
	require.NotNil(t, st.Pacing, "the pacer's inputs are visible")
}

func TestE2EAgentNodeAbandons(t *testing.T) {
	t.Parallel()
	x, _, _ := setupAgents(t)
	// Nobody logged in: the answered call waits 2 s for an agent, hears
	// the identification message and is hung up, tagged abandoned before
	// it ends.
	c := x.placeFlow(t, "+12125551005", "agents") // answers and waits in silence
	run, res := x.waitRun(t, c.ID)
	require.Equal(t, "abandoned", run.Outcome, res.Err)
	require.Equal(t, "abandoned", res.Disposition)
	require.Len(t, res.Path, 1)
	require.Equal(t, "no agent", res.Path[0].Result)
	ended := x.w.WaitTerminal(t, c.ID)
	require.Equal(t, controller.CallCompleted, ended.State)
	got, _ := x.getCall(t, c.ID)
	require.Equal(t, "abandoned", got.Disposition)
	require.Empty(t, got.AgentID)
}

func TestE2ECampaignPreview(t *testing.T) {
	t.Parallel()
	avail := make(chan struct{}, 16)
	k, sa := newTicks(), &simAgents{}
	x := setupIVR(t, func(m *Main) {
		m.OnCampaignTick = k.tick
		m.OnAgentChange = func(a controller.Agent) {
			sa.onChange(a)
			if a.State == controller.AgentAvailable {
				avail <- struct{}{}
			}
		}
		sa.m = m
	})
	x.needSim(t)
	x.putFlow(t, "agents", agentFlow)
	t.Cleanup(sa.wg.Wait)
	sa.login(t, 1)
	<-avail // logged in
	ann := sa.ids[0]
	ctx := context.Background()
	cs, ag := x.m.Campaigns(), x.m.Agents()
	list, err := cs.CreateLeadList(ctx, "", "preview")
	require.NoError(t, err)
	_, err = cs.RunImport(ctx, "", list.ID, strings.NewReader("phone,name\n+12123001009,Ann\n+12123011009,Bob\n+12123021009,Cat\n"), "", nil)
	require.NoError(t, err)
	c, err := cs.CreateCampaign(ctx, controller.Campaign{Name: "preview", Mode: controller.ModePreview, FlowID: "agents",
		ListIDs: []string{list.ID}, CallerIDs: []string{"+12125550100"}, Purpose: controller.PurposeService,
		MaxConcurrent: 10, MaxCPS: 10})
	require.NoError(t, err)
	_, err = cs.TransitionCampaign(ctx, "", c.ID, controller.CampaignStart)
	require.NoError(t, err)

	// Nothing is dialled until the agent accepts.
	for range 2 { // two whole passes of the runner
		select {
		case <-k.next():
		case <-time.After(30 * time.Second):
			t.Fatal("the campaign runner stopped")
		}
	}
	require.Zero(t, x.sim.Originated())

	first, ok, err := ag.NextPreviewLead(ctx, "", ann)
	require.NoError(t, err)
	require.True(t, ok)
	again, _, err := ag.NextPreviewLead(ctx, "", ann)
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID, "the offer holds until accepted or skipped")
	require.NoError(t, ag.SkipPreviewLead(ctx, "", ann))

	var taken []int64
	for {
		lead, ok, err := ag.NextPreviewLead(ctx, "", ann)
		require.NoError(t, err)
		if !ok {
			break
		}
		require.NotEqual(t, first.ID, lead.ID, "a skipped lead waits before it is offered again")
		_, err = ag.AcceptPreviewLead(ctx, "", ann)
		require.NoError(t, err)
		taken = append(taken, lead.ID)
		select {
		case <-avail: // the call was answered, bridged to ann, ended, wrapped up
		case <-time.After(30 * time.Second):
			t.Fatal("the accepted lead's call never reached the agent and ended")
		}
	}
	require.Len(t, taken, 2)
	st := waitCampaign(t, k, cs, c.ID, "settled the accepted leads", func(st controller.CampaignStatus) bool {
		return st.Counters.Done == 2
	})
	require.Equal(t, 1, st.Counters.Pending, "the skipped lead")
	for _, id := range taken {
		calls, err := cs.LeadAttempts(ctx, "", c.ID, id)
		require.NoError(t, err)
		require.Len(t, calls, 1)
		require.Equal(t, ann, calls[0].AgentID, "connected to the agent who accepted it")
		require.Equal(t, "sale", calls[0].Disposition)
	}
	require.Equal(t, 2, x.sim.Originated())
}
