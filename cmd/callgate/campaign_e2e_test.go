package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/dialer"
)

// ticks wakes campaign waiters after every pass of the campaign runner.
type ticks struct {
	mu sync.Mutex
	ch chan struct{}
}

func newTicks() *ticks { return &ticks{ch: make(chan struct{})} }

func (k *ticks) tick() {
	k.mu.Lock()
	close(k.ch)
	k.ch = make(chan struct{})
	k.mu.Unlock()
}

func (k *ticks) next() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ch
}

// waitCampaign waits, a runner pass at a time, until the campaign's status
// satisfies ok, and returns it.
func waitCampaign(t *testing.T, k *ticks, cs *dialer.Campaigns, id, what string, ok func(controller.CampaignStatus) bool) controller.CampaignStatus {
	t.Helper()
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	for {
		next := k.next()
		st, err := cs.Campaign(context.Background(), controller.DefaultTenant, id)
		require.NoError(t, err)
		if ok(st) {
			return st
		}
		select {
		case <-next:
		case <-deadline.C:
			t.Fatalf("campaign never %s; last %+v", what, st.Counters)
		}
	}
}

// campaignSuffixes are switchsim scenarios (the last four digits): answers,
// busy, no answer, answers for 2 s, rejects, unallocated.
var campaignSuffixes = []string{"2000", "1003", "1004", "1006", "1007", "1008"}

// leadCSV returns n leads to distinct valid numbers cycling through the
// scenarios, lead i calling +1212<200+i/6><suffix i%6>.
func leadCSV(n int) (string, []string) {
	var b strings.Builder
	b.WriteString("phone,name,tag:region\n")
	numbers := make([]string, n)
	for i := range n {
		numbers[i] = fmt.Sprintf("+1212%03d%s", 200+i/len(campaignSuffixes), campaignSuffixes[i%len(campaignSuffixes)])
		region := []string{"north", "south"}[i%2]
		fmt.Fprintf(&b, "%s,Lead %d,%s\n", numbers[i], i, region)
	}
	b.WriteString("not-a-number,Bad,north\n")
	return b.String(), numbers
}

// startCampaign imports leads into a new list and starts a campaign on it.
func startCampaign(t *testing.T, cs *dialer.Campaigns, csv string, c controller.Campaign) controller.Campaign {
	t.Helper()
	ctx := context.Background()
	list, err := cs.CreateLeadList(ctx, "", "e2e")
	require.NoError(t, err)
	im, err := cs.RunImport(ctx, "", list.ID, strings.NewReader(csv), "", nil)
	require.NoError(t, err)
	require.Equal(t, "done", im.State, im.Error)
	require.Equal(t, 1, im.Rejected)
	c.Name, c.ListIDs = "e2e", []string{list.ID}
	if c.CallerIDs == nil {
		c.CallerIDs = []string{"+12125550100"}
	}
	c.Purpose = controller.PurposeService
	c, err = cs.CreateCampaign(ctx, c)
	require.NoError(t, err)
	c, err = cs.TransitionCampaign(ctx, "", c.ID, controller.CampaignStart)
	require.NoError(t, err)
	return c
}

// leadCalls returns every call of a campaign by lead, oldest first.
func leadCalls(t *testing.T, cs *dialer.Campaigns, id string) map[int64][]controller.Call {
	t.Helper()
	out := map[int64][]controller.Call{}
	var after int64
	for {
		leads, err := cs.CampaignLeads(context.Background(), "", id, "", after, 1000)
		require.NoError(t, err)
		if len(leads) == 0 {
			return out
		}
		for _, l := range leads {
			calls, err := cs.LeadAttempts(context.Background(), "", id, l.ID)
			require.NoError(t, err)
			out[l.ID] = calls
			after = l.ID
		}
	}
}

// requireNeverTwiceAtOnce checks no lead had two calls alive at once: each
// call was created after the one before it ended, by the database's clock
// (ended_at is the switch's, and switchsim's runs fast). The database also
// enforces it (a unique index on a lead's live call).
func requireNeverTwiceAtOnce(t *testing.T, byLead map[int64][]controller.Call) {
	t.Helper()
	for lead, calls := range byLead {
		for i := 1; i < len(calls); i++ {
			prev := calls[i-1]
			require.True(t, prev.State.Terminal(), "lead %d: an earlier call has not ended", lead)
			require.True(t, calls[i].CreatedAt.After(prev.UpdatedAt), "lead %d: call %d began before call %d ended", lead, i, i-1)
		}
	}
}

func TestE2ECampaignThousandLeads(t *testing.T) {
	t.Parallel()
	k := newTicks()
	e := setupE2E(t, simOptions{main: func(m *Main) { m.OnCampaignTick = k.tick }})
	e.needSim(t)
	cs := e.m.Campaigns()
	csv, numbers := leadCSV(1000)
	// The first busy number is refused after its first attempt, before its
	// retry is due: that retry must never reach the switch.
	refused := numbers[1]
	c := startCampaign(t, cs, csv, controller.Campaign{MaxConcurrent: 100, MaxCPS: 500, RingSeconds: 30,
		MaxAttempts: 3, Retry: map[controller.Outcome]controller.RetryRule{
			controller.OutcomeBusy:     {DelaySeconds: 2, Max: 1},
			controller.OutcomeNoAnswer: {DelaySeconds: 1, Max: 1},
			controller.OutcomeFailed:   {DelaySeconds: 1, Max: 1},
		}})

	// Wait for the refused number's first call to end, then refuse it.
	var firstID controller.CallID
	waitCampaign(t, k, cs, c.ID, "called the refused number", func(controller.CampaignStatus) bool {
		for _, calls := range leadCalls(t, cs, c.ID) {
			if len(calls) > 0 && calls[0].To == refused && calls[0].State.Terminal() {
				firstID = calls[0].ID
				return true
			}
		}
		return false
	})
	require.Equal(t, http.StatusCreated, e.do(t, "POST", "/v1/refusals", nil,
		map[string]any{"number": refused, "source": "api", "forever": true}, nil))

	st := waitCampaign(t, k, cs, c.ID, "finished", func(st controller.CampaignStatus) bool {
		return st.Counters.Done == st.Counters.Leads
	})
	require.Equal(t, 1000, st.Counters.Leads)
	require.Equal(t, controller.IdleNoLeads, st.Idle)

	byLead := leadCalls(t, cs, c.ID)
	require.Len(t, byLead, 1000)
	requireNeverTwiceAtOnce(t, byLead)
	leads, err := cs.CampaignLeads(context.Background(), "", c.ID, "", 0, 1000)
	require.NoError(t, err)
	want := map[string]struct {
		outcomes []controller.Outcome
		calls    int
	}{
		"2000": {[]controller.Outcome{controller.OutcomeAnswered}, 1},
		"1006": {[]controller.Outcome{controller.OutcomeAnswered}, 1},
		"1003": {[]controller.Outcome{controller.OutcomeBusy}, 2},
		"1004": {[]controller.Outcome{controller.OutcomeNoAnswer}, 2},
		"1007": {[]controller.Outcome{controller.OutcomeRejected, controller.OutcomeDeclined}, 1},
		"1008": {[]controller.Outcome{controller.OutcomeInvalidNumber}, 1},
	}
	originated := 0
	for _, l := range leads {
		require.Equal(t, "done", l.Status, "lead %d", l.ID)
		calls := byLead[l.ID]
		for _, call := range calls {
			if call.State != controller.CallBlocked {
				originated++
			}
		}
		if l.Phone == refused {
			require.Equal(t, controller.OutcomeRefused, l.LastOutcome)
			require.Len(t, calls, 2, "the first call and the blocked retry")
			require.Equal(t, firstID, calls[0].ID)
			require.Equal(t, controller.CallBlocked, calls[1].State)
			continue
		}
		w := want[l.Phone[len(l.Phone)-4:]]
		require.Contains(t, w.outcomes, l.LastOutcome, "lead %s", l.Phone[len(l.Phone)-4:])
		require.Len(t, calls, w.calls, "lead %s: attempts as the rules say", l.Phone[len(l.Phone)-4:])
		require.NotEmpty(t, l.Disposition)
	}
	require.Equal(t, originated, e.sim.Originated(), "the switch saw each placed call once")
}

func TestE2ECampaignPauseStopsAtOnce(t *testing.T) {
	t.Parallel()
	k := newTicks()
	e := setupE2E(t, simOptions{main: func(m *Main) { m.OnCampaignTick = k.tick }})
	e.needSim(t)
	cs := e.m.Campaigns()
	csv, _ := leadCSV(300)
	c := startCampaign(t, cs, csv, controller.Campaign{MaxConcurrent: 40, MaxCPS: 100})
	// Pause with calls on the switch (the 1004s ring for a while) and
	// calls still queued.
	waitCampaign(t, k, cs, c.ID, "placing calls", func(st controller.CampaignStatus) bool {
		return e.sim.Originated() >= 10 && st.Counters.Dialling >= 20
	})
	_, err := cs.TransitionCampaign(context.Background(), "", c.ID, controller.CampaignPause)
	require.NoError(t, err)
	// What had been sent when the pause returned is all the switch will
	// ever see: the rest were withdrawn in the pause's transaction.
	byLead := leadCalls(t, cs, c.ID)
	var sent []controller.CallID
	for _, calls := range byLead {
		for _, call := range calls {
			require.NotEqual(t, controller.CallQueued, call.State, "no queued call survives a pause")
			if call.State != controller.CallCanceled && call.State != controller.CallBlocked {
				sent = append(sent, call.ID)
			}
		}
	}
	require.NotEmpty(t, sent, "calls were on the switch when the pause returned")
	for _, id := range sent {
		e.w.WaitTerminal(t, id)
	}
	// Their leads are settled while the campaign is paused.
	st := waitCampaign(t, k, cs, c.ID, "settled", func(st controller.CampaignStatus) bool { return st.Counters.Dialling == 0 })
	require.Equal(t, controller.IdleNotRunning, st.Idle)
	require.Equal(t, len(sent), e.sim.Originated(), "nothing originated after the pause")
	require.Less(t, st.Counters.Done, 300)

	_, err = cs.TransitionCampaign(context.Background(), "", c.ID, controller.CampaignResume)
	require.NoError(t, err)
	waitCampaign(t, k, cs, c.ID, "finished", func(st controller.CampaignStatus) bool { return st.Counters.Done == 300 })
	requireNeverTwiceAtOnce(t, leadCalls(t, cs, c.ID))
	ids := map[controller.CallID]bool{}
	for _, calls := range leadCalls(t, cs, c.ID) {
		for _, call := range calls {
			require.False(t, ids[call.ID])
			ids[call.ID] = true
		}
	}
}

// TestE2ECampaignABTest: a campaign split between two flows, one whose set
// node gives the disposition "sale" and one that gives "no_sale". Each lead
// keeps its variant, each call runs its variant's flow, and the statistics
// per variant are what happened.
func TestE2ECampaignABTest(t *testing.T) {
	t.Parallel()
	k := newTicks()
	runs := make(chan controller.FlowRun, 64)
	x := setupIVR(t, func(m *Main) {
		m.OnCampaignTick = k.tick
		m.OnRunEnded = func(r controller.FlowRun) { runs <- r }
	})
	x.needSim(t)
	x.putFlow(t, "pitch-a", `{"start": "tag", "nodes": {
		"tag": {"type": "set", "disposition": "no_sale", "next": "bye"}, "bye": {"type": "hangup"}}}`)
	x.putFlow(t, "pitch-b", `{"start": "tag", "nodes": {
		"tag": {"type": "set", "disposition": "sale", "next": "bye"}, "bye": {"type": "hangup"}}}`)
	// 48 leads: three in four answer and stay on the line until the flow
	// hangs up (1005), one in four is busy (1003).
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range 48 {
		suffix := "1005"
		if i%4 == 3 {
			suffix = "1003"
		}
		fmt.Fprintf(&csv, "+1212%03d%s,Lead %d\n", 300+i, suffix, i)
	}
	csv.WriteString("not-a-number,Bad\n")
	cs := x.m.Campaigns()
	flows := map[string]string{"control": "pitch-a", "bold": "pitch-b"}
	c := startCampaign(t, cs, csv.String(), controller.Campaign{MaxConcurrent: 20, MaxCPS: 200, MaxAttempts: 1,
		Variants: []controller.Variant{{Name: "control", FlowID: flows["control"]}, {Name: "bold", FlowID: flows["bold"]}}})
	require.Equal(t, 1, c.Variants[0].Weight, "equal shares")

	waitCampaign(t, k, cs, c.ID, "finished", func(st controller.CampaignStatus) bool {
		return st.Counters.Leads == 48 && st.Counters.Done == 48
	})
	// Every answered call's flow stored its disposition before its run
	// ended.
	deadline := time.After(60 * time.Second)
	for range 36 {
		select {
		case <-runs:
		case <-deadline:
			t.Fatal("the answered calls' flows did not all end")
		}
	}

	type tally struct{ leads, answered int }
	want := map[string]*tally{"control": {}, "bold": {}}
	leads, err := cs.CampaignLeads(context.Background(), "", c.ID, "", 0, 1000)
	require.NoError(t, err)
	byLead := leadCalls(t, cs, c.ID)
	for _, l := range leads {
		require.Contains(t, flows, l.Variant, "every lead is in a variant")
		calls := byLead[l.ID]
		require.Len(t, calls, 1, "max_attempts 1")
		call := calls[0]
		require.Equal(t, l.Variant, call.Variant)
		require.Equal(t, flows[l.Variant], call.FlowID, "the call ran its variant's flow")
		want[l.Variant].leads++
		if strings.HasSuffix(l.Phone, "1005") {
			want[l.Variant].answered++
			require.NotNil(t, call.AnsweredAt)
			require.Equal(t, map[string]string{"control": "no_sale", "bold": "sale"}[l.Variant], call.Disposition)
		}
	}
	require.Positive(t, want["control"].leads)
	require.Positive(t, want["bold"].leads)

	var st controller.CampaignStats
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/campaigns/"+c.ID+"/stats", nil, nil, &st))
	require.Equal(t, controller.DefaultConversionDispositions, st.ConversionDispositions)
	require.Equal(t, 48, st.Overall.Leads)
	require.Equal(t, 48, st.Overall.Attempts)
	require.Equal(t, 36, st.Overall.Connected)
	require.Equal(t, want["bold"].answered, st.Overall.Conversions, "only bold's flow converts")
	require.Len(t, st.Variants, 2)
	for _, v := range st.Variants {
		w := want[v.Name]
		require.Equal(t, flows[v.Name], v.FlowID)
		require.Equal(t, w.leads, v.Leads, v.Name)
		require.Equal(t, w.leads, v.Attempts, v.Name)
		require.Equal(t, w.answered, v.Connected, v.Name)
		require.NotNil(t, v.ConnectInterval)
		require.LessOrEqual(t, v.ConnectInterval.Low, v.ConnectRate)
		require.GreaterOrEqual(t, v.ConnectInterval.High, v.ConnectRate)
	}
	control, bold := st.Variants[0], st.Variants[1]
	require.Zero(t, control.Conversions)
	require.Equal(t, bold.Connected, bold.Conversions)
	require.Nil(t, control.VsControl)
	require.NotNil(t, bold.VsControl)
	require.InDelta(t, bold.ConversionRate, bold.VsControl.Difference, 1e-12)
	require.Less(t, bold.VsControl.PValue, 0.05)
	require.False(t, bold.VsControl.Significant, "fewer than 30 attempts in a group")
	m := st.Metrics
	require.Equal(t, 48, m.Originated)
	require.InDelta(t, 0.75, m.AnswerSeizureRatio, 1e-12)
	require.InDelta(t, 0.75, m.CallSetupSuccessRate, 1e-12, "the busy calls never rang")
	require.Zero(t, m.AbandonRate)
	require.Zero(t, m.BlockedAttempts)

	// The same metrics for Prometheus, while the campaign runs.
	resp, err := x.client.Get(x.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), `callgate_campaign_calls_originated{campaign_id="`+c.ID+`"} 48`)
	require.Contains(t, string(body), `callgate_campaign_answer_seizure_ratio{campaign_id="`+c.ID+`"} 0.75`)
}
