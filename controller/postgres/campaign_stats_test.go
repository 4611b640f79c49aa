package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// abVariants are a 1:3 split between two flows.
var abVariants = []controller.Variant{{Name: "control", FlowID: "pitch-a", Weight: 1}, {Name: "bold", FlowID: "pitch-b", Weight: 3}}

func TestCampaignVariantsSplitLeads(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 400, controller.Campaign{MaxConcurrent: 1000, MaxCPS: 10000,
		Variants: abVariants})
	_, err := b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)

	leads, err := b.store.CampaignLeads(b.ctx, c.ID, "", 0, 1000)
	require.NoError(t, err)
	require.Len(t, leads, 400)
	split := map[string]int{}
	byLead := map[int64]string{}
	for _, l := range leads {
		require.Equal(t, controller.VariantOf(c.ID, l.ID, abVariants), l.Variant,
			"lead %d: the SQL split is controller.VariantOf", l.ID)
		split[l.Variant]++
		byLead[l.ID] = l.Variant
	}
	// 1:3 of 400 is 100:300; the binomial's standard deviation is 8.7.
	require.InDelta(t, 100, split["control"], 35, "%v", split)
	require.Equal(t, 400, split["control"]+split["bold"])

	d, err := b.store.DispatchLeads(b.ctx, c.ID, 1000, nil)
	require.NoError(t, err)
	require.Equal(t, 400, d.Created)
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{Limit: 200})
	require.NoError(t, err)
	flows := map[string]string{"control": "pitch-a", "bold": "pitch-b"}
	for _, call := range page.Calls {
		require.Equal(t, byLead[call.LeadID], call.Variant, "the call records its lead's variant")
		require.Equal(t, flows[call.Variant], call.FlowID, "the call runs its variant's flow")
	}

	// Once started, the split holds: other settings may change while
	// paused, the variants may not.
	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignPause, nil)
	require.NoError(t, err)
	c.MaxCPS = 50
	_, err = b.store.UpdateCampaign(b.ctx, c)
	require.NoError(t, err)
	c.Variants = []controller.Variant{abVariants[0], {Name: "bold", FlowID: "pitch-b", Weight: 1}}
	_, err = b.store.UpdateCampaign(b.ctx, c)
	requireCode(t, controller.ECONFLICT, err)
	require.Equal(t, "variants", controller.ErrorField(err))
	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignResume, nil)
	require.NoError(t, err)
	again, err := b.store.CampaignLeads(b.ctx, c.ID, "", 0, 1000)
	require.NoError(t, err)
	for _, l := range again {
		require.Equal(t, byLead[l.ID], l.Variant, "resuming keeps each lead's variant")
	}

	// Without variants nothing changes: no variant, the campaign's flow.
	plain := newCampaign(t, b.ctx, b.store, 3, controller.Campaign{MaxConcurrent: 10, MaxCPS: 1000, FlowID: "plain"})
	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, plain.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	_, err = b.store.DispatchLeads(b.ctx, plain.ID, 10, nil)
	require.NoError(t, err)
	leads, err = b.store.CampaignLeads(b.ctx, plain.ID, "", 0, 10)
	require.NoError(t, err)
	for _, l := range leads {
		require.Empty(t, l.Variant)
		hist, err := b.store.LeadAttempts(b.ctx, controller.DefaultTenant, plain.ID, l.ID)
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.Empty(t, hist[0].Variant)
		require.Equal(t, "plain", hist[0].FlowID)
	}
}

// TestCampaignCallCounts places a campaign's calls through the store as the
// dialer would, ends them in every way, and checks each count against a
// tally of what was done.
func TestCampaignCallCounts(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 24, controller.Campaign{MaxConcurrent: 100, MaxCPS: 10000,
		Variants: abVariants})
	_, err := b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	_, err = b.store.DispatchLeads(b.ctx, c.ID, 100, nil)
	require.NoError(t, err)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 100)
	require.NoError(t, err)
	require.Len(t, claimed, 24)

	// Two blocked at dial time, two claimed and never sent, the rest sent.
	res := b.store.RecheckAttempts(b.ctx, []controller.Recheck{
		{Call: claimed[0], Decide: block(controller.ReasonDNCInternal)},
		{Call: claimed[1], Decide: block(controller.ReasonConsentMissing, controller.ReasonDNCList)},
	})
	require.NoError(t, res[0].Err)
	require.NoError(t, res[1].Err)
	sent := claimed[4:]
	require.NoError(t, b.store.MarkOriginating(b.ctx, ids(sent), "fs1", time.Now()))

	want := map[string]*controller.VariantCallCounts{}
	for _, v := range abVariants {
		want[v.Name] = &controller.VariantCallCounts{Variant: v.Name}
	}
	leads, err := b.store.CampaignLeads(b.ctx, c.ID, "", 0, 100)
	require.NoError(t, err)
	for _, l := range leads {
		want[l.Variant].Leads++
	}
	step := func(call controller.Call, from controller.CallState) controller.Call {
		t.Helper()
		require.NoError(t, b.store.SaveCallUpdates(b.ctx, []controller.CallUpdate{{Call: call, From: from,
			Event: controller.ChannelEvent{CallID: call.ID, Kind: controller.EventHangup, At: time.Now()}}}))
		return call
	}
	for i, call := range sent {
		k := want[call.Variant]
		k.Originated++
		switch i % 4 {
		case 0, 3: // answered, talked 10+i seconds
			now := time.Now()
			call.State, call.AnsweredAt = controller.CallAnswered, &now
			call = step(call, controller.CallOriginating)
			call.State, call.HangupCause, call.Billsec, call.Duration = controller.CallCompleted, "NORMAL_CLEARING", 10+i, 12+i
			step(call, controller.CallAnswered)
			k.Reached++
			k.Answered++
			k.TalkSeconds += int64(10 + i)
			disp := map[int]string{0: "sale", 4: "SALE", 8: "abandoned", 12: "callback"}[i%16]
			if i%4 == 3 {
				disp = ""
			}
			if disp != "" {
				_, err := b.store.TagCall(b.ctx, controller.DefaultTenant, call.ID, nil, disp)
				require.NoError(t, err)
			}
			switch disp {
			case "sale", "SALE":
				k.Conversions++
			case "abandoned":
				k.Abandoned++
			}
		case 1: // rang out
			call.State = controller.CallRinging
			call = step(call, controller.CallOriginating)
			call.State, call.HangupCause = controller.CallFailed, "NO_ANSWER"
			step(call, controller.CallRinging)
			k.Reached++
		case 2: // busy, never rang
			call.State, call.HangupCause, call.SIPStatus = controller.CallFailed, "USER_BUSY", 486
			step(call, controller.CallOriginating)
		}
	}
	// A disposition on a call never sent does not count.
	_, err = b.store.TagCall(b.ctx, controller.DefaultTenant, claimed[2].ID, nil, "sale")
	require.NoError(t, err)

	got, err := b.store.CampaignCallCounts(b.ctx, c.ID, []string{"Sale", "converted"})
	require.NoError(t, err)
	require.Equal(t, 2, got.Blocked)
	require.Equal(t, map[string]int{controller.ReasonDNCInternal: 1, controller.ReasonConsentMissing: 1,
		controller.ReasonDNCList: 1}, got.BlockedReasons)
	var wantList []controller.VariantCallCounts
	for _, name := range []string{"bold", "control"} { // by name
		if want[name].Leads > 0 { // a variant without leads has no row
			wantList = append(wantList, *want[name])
		}
	}
	require.Equal(t, wantList, got.Variants)
	total := 0
	for _, v := range got.Variants {
		total += v.Originated
	}
	require.Equal(t, 20, total)

	// Another campaign, or none, counts nothing.
	empty, err := b.store.CampaignCallCounts(b.ctx, "00000000-0000-4000-8000-000000000000", nil)
	require.NoError(t, err)
	require.Empty(t, empty.Variants)
	require.Zero(t, empty.Blocked)
	_, err = b.store.CampaignCallCounts(b.ctx, "not-a-uuid", nil)
	requireCode(t, controller.ENOTFOUND, err)
}
