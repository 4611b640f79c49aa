package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestRoutingRulesAreVersioned(t *testing.T) {
	b := setup(t)
	tenant := controller.DefaultTenant
	got, err := b.store.RoutingRules(b.ctx, tenant)
	require.NoError(t, err)
	require.Zero(t, got.Version)
	require.Equal(t, []controller.RouteRule{}, got.Rules, "never set: none, as an empty list")

	rules := []controller.RouteRule{
		{Name: "ny", Match: controller.RouteMatch{Prefixes: []string{"+1212"}}, Switch: "fs2", Trunk: "carrier", Log: "NY"},
		{Match: controller.RouteMatch{Countries: []string{"GB"}, Types: []string{"mobile"}}},
	}
	_, err = b.store.PutRoutingRules(b.ctx, tenant, rules, 3)
	requireCode(t, controller.ECONFLICT, err) // nothing stored: not version 3
	put, err := b.store.PutRoutingRules(b.ctx, tenant, rules, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, put.Version)
	got, err = b.store.RoutingRules(b.ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, rules, got.Rules)
	require.EqualValues(t, 1, got.Version)
	require.False(t, got.UpdatedAt.IsZero())

	_, err = b.store.PutRoutingRules(b.ctx, tenant, nil, 0)
	requireCode(t, controller.ECONFLICT, err) // set already
	put, err = b.store.PutRoutingRules(b.ctx, tenant, rules[1:], 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, put.Version)
	_, err = b.store.PutRoutingRules(b.ctx, tenant, rules, 1)
	requireCode(t, controller.ECONFLICT, err)
	put, err = b.store.PutRoutingRules(b.ctx, tenant, nil, -1)
	require.NoError(t, err)
	require.EqualValues(t, 3, put.Version)
	require.Equal(t, []controller.RouteRule{}, put.Rules)
	v, err := b.store.RoutingVersion(b.ctx, tenant)
	require.NoError(t, err)
	require.EqualValues(t, 3, v)

	_, err = b.store.PutRoutingRules(b.ctx, "nobody", rules, -1)
	require.Equal(t, "tenant_id", controller.ErrorField(err))
	v, err = b.store.RoutingVersion(b.ctx, "nobody")
	require.NoError(t, err)
	require.Zero(t, v)

	// Concurrent replacements each get their own version.
	var wg sync.WaitGroup
	versions := make([]int64, 8)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			put, err := b.store.PutRoutingRules(b.ctx, tenant, rules, -1)
			require.NoError(t, err)
			versions[i] = put.Version
		}()
	}
	wg.Wait()
	require.ElementsMatch(t, []int64{4, 5, 6, 7, 8, 9, 10, 11}, versions)
}

func TestDispatchRoutesCalls(t *testing.T) {
	b := setup(t)
	c := newCampaign(t, b.ctx, b.store, 10, controller.Campaign{MaxConcurrent: 100, MaxCPS: 1000, RingSeconds: 20})
	_, err := b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, c.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	// Even numbers go to fs2's mobile trunk, odd ones anywhere.
	route := func(number string) (string, string) {
		if (number[len(number)-1]-'0')%2 == 0 {
			return "fs2", "mobile"
		}
		return "", ""
	}
	d, err := b.store.DispatchLeads(b.ctx, c.ID, 100, route)
	require.NoError(t, err)
	require.Equal(t, 10, d.Created)

	anywhere, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 100)
	require.NoError(t, err)
	require.Len(t, anywhere, 5)
	for _, call := range anywhere {
		require.True(t, strings.ContainsAny(call.To[len(call.To)-1:], "13579"), call.To)
		require.Empty(t, call.Trunk)
	}
	onFS2, err := b.store.ClaimAttempts(b.ctx, "fs2", "owner-b", 100)
	require.NoError(t, err)
	require.Len(t, onFS2, 5)
	for _, call := range onFS2 {
		require.Equal(t, "mobile", call.Trunk)
		require.Equal(t, "fs2", call.Switch)
	}

	// A campaign that names its switch keeps it: routing is not asked.
	pinned := newCampaign(t, b.ctx, b.store, 3, controller.Campaign{MaxConcurrent: 100, MaxCPS: 1000, RingSeconds: 20, Switch: "fs1"})
	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, pinned.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	d, err = b.store.DispatchLeads(b.ctx, pinned.ID, 100, func(string) (string, string) {
		t.Error("routing asked for a campaign that names its switch")
		return "fs2", "mobile"
	})
	require.NoError(t, err)
	require.Equal(t, 3, d.Created)
	pinnedCalls, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 100)
	require.NoError(t, err)
	require.Len(t, pinnedCalls, 3)
	for _, call := range pinnedCalls {
		require.Equal(t, pinned.ID, call.CampaignID)
		require.Empty(t, call.Trunk)
	}
}

func TestClaimAttemptsExceptBusyTrunks(t *testing.T) {
	b := setup(t)
	trunks := []string{"a", "a", "", "b", ""}
	for i, trunk := range trunks {
		c := newCall(i)
		c.Trunk = trunk
		_, _, err := b.store.CreateCall(b.ctx, c, "")
		require.NoError(t, err)
	}
	trunkOf := func(calls []controller.Call) []string {
		var out []string
		for _, c := range calls {
			out = append(out, c.Trunk)
		}
		return out
	}
	got, err := b.store.ClaimAttemptsExcept(b.ctx, "fs1", "owner-a", 10, []string{"a", ""})
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, trunkOf(got), "busy trunks' calls stay queued")
	got, err = b.store.ClaimAttemptsExcept(b.ctx, "fs1", "owner-a", 10, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []string{"", ""}, trunkOf(got))
	got, err = b.store.ClaimAttemptsExcept(b.ctx, "fs1", "owner-a", 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "a"}, trunkOf(got))
}
