package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// leadsFor returns n leads to distinct numbers, tagged by parity.
func leadsFor(from, n int) []controller.Lead {
	out := make([]controller.Lead, n)
	for i := range n {
		region := "north"
		if (from+i)%2 == 1 {
			region = "south"
		}
		out[i] = controller.Lead{Phone: fmt.Sprintf("+1212555%04d", from+i), Name: "Lead",
			Tags: map[string]string{"region": region}}
	}
	return out
}

// newCampaign stores a list of n leads and a draft campaign over it.
func newCampaign(t *testing.T, ctx context.Context, s *postgres.Store, n int, c controller.Campaign) controller.Campaign {
	t.Helper()
	l, err := s.CreateLeadList(ctx, controller.DefaultTenant, "list")
	require.NoError(t, err)
	added, err := s.InsertLeads(ctx, controller.DefaultTenant, l.ID, leadsFor(0, n), true)
	require.NoError(t, err)
	require.Equal(t, n, added)
	c.TenantID, c.Name, c.Mode, c.ListIDs = controller.DefaultTenant, "spring", controller.ModeBroadcast, []string{l.ID}
	if len(c.CallerIDs) == 0 {
		c.CallerIDs = []string{"+12125550001", "+12125550002"}
	}
	c, err = s.CreateCampaign(ctx, c)
	require.NoError(t, err)
	require.Equal(t, controller.CampaignDraft, c.State)
	return c
}

func TestInsertLeadsDeduplicates(t *testing.T) {
	b := setup(t)
	l, err := b.store.CreateLeadList(b.ctx, controller.DefaultTenant, "list")
	require.NoError(t, err)
	leads := append(leadsFor(0, 10), leadsFor(5, 10)...) // 5 repeats inside the batch
	n, err := b.store.InsertLeads(b.ctx, controller.DefaultTenant, l.ID, leads, false)
	require.NoError(t, err)
	require.Equal(t, 15, n)
	n, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, l.ID, leadsFor(10, 10), false)
	require.NoError(t, err)
	require.Equal(t, 5, n, "numbers already in the list are skipped")
	got, err := b.store.GetLeadList(b.ctx, controller.DefaultTenant, l.ID)
	require.NoError(t, err)
	require.Equal(t, 20, got.Leads)

	// The fresh path copies straight in, and falls back when a number is
	// there after all.
	l2, err := b.store.CreateLeadList(b.ctx, controller.DefaultTenant, "fresh")
	require.NoError(t, err)
	n, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, l2.ID, leadsFor(0, 10), true)
	require.NoError(t, err)
	require.Equal(t, 10, n)
	n, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, l2.ID, leadsFor(5, 10), true)
	require.NoError(t, err)
	require.Equal(t, 5, n, "not fresh after all: the repeats are skipped")
	_, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, "00000000-0000-0000-0000-000000000000", leadsFor(0, 1), true)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, "00000000-0000-0000-0000-000000000000", leadsFor(0, 1), false)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetLeadList(b.ctx, "other", l.ID)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestCampaignStartTargetsAndDeduplicates(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 20, controller.Campaign{MaxConcurrent: 5, MaxCPS: 100})
	// A second list repeating 10 of the numbers.
	l2, err := b.store.CreateLeadList(b.ctx, controller.DefaultTenant, "again")
	require.NoError(t, err)
	_, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, l2.ID, leadsFor(10, 20), false)
	require.NoError(t, err)
	c.ListIDs = append(c.ListIDs, l2.ID)
	c, err = b.store.UpdateCampaign(b.ctx, c)
	require.NoError(t, err)

	north := &controller.TagExpr{Op: "eq", Key: "region", Value: "north"}
	c, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, north)
	require.NoError(t, err)
	require.Equal(t, controller.CampaignRunning, c.State)
	k, err := b.store.CampaignCounters(b.ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, 15, k.Leads, "30 distinct numbers, half of them north")
	require.Equal(t, 15, k.Due)

	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.UpdateCampaign(b.ctx, c)
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.TransitionCampaign(b.ctx, "other", c.ID, controller.CampaignPause, nil)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestCampaignDispatchHoldsLimits(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 30, controller.Campaign{MaxConcurrent: 10, MaxCPS: 1000, RingSeconds: 20})
	d, err := b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	require.False(t, d.Running, "a draft dispatches nothing")
	require.Zero(t, d.Created)

	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	d, err = b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	require.Equal(t, 10, d.Created, "max_concurrent")
	d, err = b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	require.Zero(t, d.Created, "at the limit")
	require.Equal(t, 10, d.Dialling)

	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{Limit: 200})
	require.NoError(t, err)
	require.Len(t, page.Calls, 10)
	froms := map[string]int{}
	for _, call := range page.Calls {
		require.Equal(t, c.ID, call.CampaignID)
		require.NotZero(t, call.LeadID)
		require.Equal(t, controller.CallQueued, call.State)
		require.Equal(t, 20*time.Second, call.Timeout)
		froms[call.From]++
	}
	require.Equal(t, map[string]int{"+12125550001": 5, "+12125550002": 5}, froms, "the pool in turn")
}

func TestCampaignDispatchCallsPerSecond(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 30, controller.Campaign{MaxConcurrent: 100, MaxCPS: 3})
	_, err := b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	// The calls of the last second count, however fast the dispatches
	// come; the bound allows one more second's worth per second the loop
	// took on a stalled machine.
	began := time.Now()
	total := 0
	for range 5 {
		d, err := b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
		require.NoError(t, err)
		total += d.Created
	}
	windows := 1 + int(time.Since(began)/time.Second)
	require.GreaterOrEqual(t, total, 3)
	require.LessOrEqual(t, total, 3*windows, "never more than three in a second")
}

func TestCampaignDispatchExactAcrossControllers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cfg := pgtest.Config(t)
	db1, err := postgres.OpenConfig(ctx, cfg.Copy())
	require.NoError(t, err)
	t.Cleanup(db1.Close)
	require.NoError(t, db1.Migrate(ctx))
	db2, err := postgres.OpenConfig(ctx, cfg.Copy())
	require.NoError(t, err)
	t.Cleanup(db2.Close)
	s1, s2 := pgtest.StoreOn(db1), pgtest.StoreOn(db2)

	c := newCampaign(t, ctx, s1, 200, controller.Campaign{MaxConcurrent: 37, MaxCPS: 10000})
	_, err = s1.TransitionCampaign(ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range 16 {
		s := []*postgres.Store{s1, s2}[i%2]
		wg.Go(func() {
			<-start
			for range 5 {
				d, err := s.DispatchLeads(ctx, c.ID, 7, nil)
				if !assertNoError(t, err) {
					return
				}
				mu.Lock()
				total += d.Created
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	require.Equal(t, 37, total, "exactly max_concurrent, whoever dispatched")
	k, err := s2.CampaignCounters(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, 37, k.Dialling)
}

func TestCampaignPauseWithdrawsQueuedCalls(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 10, controller.Campaign{MaxConcurrent: 10, MaxCPS: 1000})
	_, err := b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	d, err := b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	require.Equal(t, 10, d.Created)
	// An owner claimed four and sent two of them before the pause.
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 4)
	require.NoError(t, err)
	require.Len(t, claimed, 4)
	require.NoError(t, b.store.MarkOriginating(b.ctx, ids(claimed[:2]), "fs1", time.Now()))

	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignPause, nil)
	require.NoError(t, err)
	require.Error(t, b.store.MarkOriginating(b.ctx, ids(claimed[2:]), "fs1", time.Now()),
		"a claimed call of a paused campaign can no longer be sent")
	more, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 100)
	require.NoError(t, err)
	require.Empty(t, more)
	k, err := b.store.CampaignCounters(b.ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, 2, k.Dialling, "the two already sent")
	require.Equal(t, 8, k.Pending)
	d, err = b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	require.False(t, d.Running)
	require.Zero(t, d.Created)

	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignResume, nil)
	require.NoError(t, err)
	d, err = b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	require.Equal(t, 8, d.Created)
}

func TestCampaignSettleAppliesTheRules(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 3, controller.Campaign{MaxConcurrent: 10, MaxCPS: 1000})
	_, err := b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	_, err = b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	calls := b.claimAndMark(t, "fs1", 3)
	n, err := b.store.SettleLeads(b.ctx, c.ID, 100, func(controller.EndedLead) controller.LeadSettlement {
		t.Fatal("no call has ended")
		return controller.LeadSettlement{}
	})
	require.NoError(t, err)
	require.Zero(t, n)

	// End the three calls: busy, busy, answered.
	causes := []string{"USER_BUSY", "USER_BUSY", "NORMAL_CLEARING"}
	var ups []controller.CallUpdate
	for i, call := range calls {
		call.State, call.HangupCause = controller.CallFailed, causes[i]
		if i == 2 {
			call.State = controller.CallCompleted
		}
		ups = append(ups, controller.CallUpdate{Call: call, From: controller.CallOriginating,
			Event: controller.ChannelEvent{CallID: call.ID, Kind: controller.EventHangup, At: time.Now()}})
	}
	require.NoError(t, b.store.SaveCallUpdates(b.ctx, ups))
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	seen := map[string]int{}
	n, err = b.store.SettleLeads(b.ctx, c.ID, 100, func(e controller.EndedLead) controller.LeadSettlement {
		seen[e.Call.HangupCause]++
		require.Zero(t, e.Attempts)
		if e.Call.HangupCause == "USER_BUSY" {
			return controller.LeadSettlement{Outcome: controller.OutcomeBusy, Counted: true, NextAt: later}
		}
		return controller.LeadSettlement{Outcome: controller.OutcomeAnswered, Counted: true, Done: true, Disposition: "sale"}
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, map[string]int{"USER_BUSY": 2, "NORMAL_CLEARING": 1}, seen)
	k, err := b.store.CampaignCounters(b.ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, 2, k.Pending)
	require.Zero(t, k.Due, "retries wait for their delay")
	require.Equal(t, 1, k.Done)
	require.Equal(t, 3, k.Attempts)
	require.Equal(t, map[controller.Outcome]int{controller.OutcomeAnswered: 1}, k.Outcomes)
	require.NotNil(t, k.NextDueAt)
	require.WithinDuration(t, later, *k.NextDueAt, time.Millisecond)

	leads, err := b.store.CampaignLeads(b.ctx, c.ID, "done", 0, 10)
	require.NoError(t, err)
	require.Len(t, leads, 1)
	require.Equal(t, "sale", leads[0].Disposition)
	hist, err := b.store.LeadAttempts(b.ctx, controller.DefaultTenant, c.ID, leads[0].ID)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	require.Equal(t, controller.CallCompleted, hist[0].State)

	n, err = b.store.SettleLeads(b.ctx, c.ID, 100, func(controller.EndedLead) controller.LeadSettlement {
		t.Fatal("settled twice")
		return controller.LeadSettlement{}
	})
	require.NoError(t, err)
	require.Zero(t, n)

	r, err := b.store.RecycleLeads(b.ctx, c.ID, []controller.Outcome{controller.OutcomeAnswered})
	require.NoError(t, err)
	require.Equal(t, 1, r)
}

func TestLeadImportRecord(t *testing.T) {
	b := setup(t)
	l, err := b.store.CreateLeadList(b.ctx, controller.DefaultTenant, "list")
	require.NoError(t, err)
	im, err := b.store.StartLeadImport(b.ctx, controller.DefaultTenant, l.ID)
	require.NoError(t, err)
	require.Equal(t, "running", im.State)
	im.Rows, im.Imported, im.Rejected = 3, 2, 1
	im.Rejects = []controller.LeadReject{{Line: 3, Reason: "phone: not a number"}}
	im.State = "done"
	require.NoError(t, b.store.SaveLeadImport(b.ctx, im))
	got, err := b.store.GetLeadImport(b.ctx, controller.DefaultTenant, im.ID)
	require.NoError(t, err)
	require.Equal(t, "done", got.State)
	require.Equal(t, im.Rejects, got.Rejects)
	require.NotNil(t, got.FinishedAt)
	_, err = b.store.GetLeadImport(b.ctx, "other", im.ID)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.StartLeadImport(b.ctx, "other", l.ID)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestCampaignCallCarriesTheLeadsZone(t *testing.T) {
	b := setup(t)
	l, err := b.store.CreateLeadList(b.ctx, controller.DefaultTenant, "zones")
	require.NoError(t, err)
	_, err = b.store.InsertLeads(b.ctx, controller.DefaultTenant, l.ID, []controller.Lead{
		{Phone: "+12125550001", TimeZone: "America/Los_Angeles"}, {Phone: "+12125550002"}}, true)
	require.NoError(t, err)
	c, err := b.store.CreateCampaign(b.ctx, controller.Campaign{TenantID: controller.DefaultTenant, Name: "z",
		Mode: controller.ModeBroadcast, ListIDs: []string{l.ID}, CallerIDs: []string{"+12125550100"},
		MaxConcurrent: 5, MaxCPS: 100})
	require.NoError(t, err)
	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	d, err := b.store.DispatchLeads(b.ctx, c.ID, 10, nil)
	require.NoError(t, err)
	require.Equal(t, 2, d.Created)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 10)
	require.NoError(t, err)
	zones := map[string]string{}
	for _, call := range claimed {
		zones[call.To] = call.CalleeZone
	}
	require.Equal(t, map[string]string{"+12125550001": "America/Los_Angeles", "+12125550002": ""}, zones,
		"the dial-time gate sees the lead's zone")
}
