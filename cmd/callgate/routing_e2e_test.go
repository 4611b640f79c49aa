package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// TestE2ERouting: rules stored through the API route API and campaign
// calls to a trunk of the switch, whose {trunk} the driver fills; the dry
// run agrees; a call that names its switch keeps the default trunk.
func TestE2ERouting(t *testing.T) {
	t.Parallel()
	k := newTicks()
	e := setupE2E(t, simOptions{main: func(m *Main) {
		m.OnCampaignTick = k.tick
		sc := &m.Config.Switches[0]
		sc.DialTemplate, sc.Trunk = "sofia/gateway/{trunk}/{number}", "carrier"
		sc.Trunks = []TrunkConfig{{Name: "mobile", MaxSessions: 1, MaxCPS: 50}}
	}})
	e.needSim(t) // a real FreeSWITCH has no such gateways

	rules := map[string]any{"rules": []map[string]any{
		{"name": "ny", "match": map[string]any{"prefixes": []string{"+1212"}}, "trunk": "mobile", "log": "NY via mobile"},
	}}
	var table controller.RoutingTable
	require.Equal(t, http.StatusOK, e.do(t, "PUT", "/v1/routing", map[string]string{"If-Match": `"0"`}, rules, &table))
	require.EqualValues(t, 1, table.Version)
	var d controller.RouteDecision
	require.Equal(t, http.StatusOK, e.do(t, "POST", "/v1/routing/dry-run", nil, map[string]string{"to": "+12125552000"}, &d))
	require.Equal(t, "mobile", d.Trunk)
	require.Equal(t, &controller.RouteRef{Index: 0, Name: "ny"}, d.Rule)

	ny, chicago := e.place(t, "+12125552000"), e.place(t, "+13125552000")
	var pinned controller.Call
	require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls", nil, map[string]any{"to": "+12125553000",
		"from": "+12125550100", "purpose": "service", "switch": "fs1"}, &pinned))
	for id, trunk := range map[controller.CallID]string{ny.ID: "mobile", chicago.ID: "", pinned.ID: ""} {
		e.w.WaitTerminal(t, id)
		got, _ := e.getCall(t, id)
		require.Equal(t, trunk, got.Trunk, got.To)
	}

	// A campaign: New York leads through the mobile trunk, one at a time,
	// Chicago leads through the default one.
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range 12 {
		fmt.Fprintf(&csv, "+1%s%03d2000,Lead %d\n", []string{"212", "312"}[i%2], 400+i, i)
	}
	csv.WriteString("not-a-number,Bad\n")
	cs := e.m.Campaigns()
	c := startCampaign(t, cs, csv.String(), controller.Campaign{MaxConcurrent: 12, MaxCPS: 100, MaxAttempts: 1})
	waitCampaign(t, k, cs, c.ID, "finished", func(st controller.CampaignStatus) bool {
		return st.Counters.Leads == 12 && st.Counters.Done == 12
	})

	byEndpoint := map[string]int{}
	for _, cmd := range e.sim.OriginateCommands() {
		i := strings.Index(cmd, "}sofia/gateway/")
		require.Positive(t, i, cmd)
		gw, number, _ := strings.Cut(strings.TrimSuffix(cmd[i+len("}sofia/gateway/"):], " &park()"), "/")
		byEndpoint[gw+" "+number[:5]]++
	}
	require.Equal(t, map[string]int{"mobile +1212": 7, "carrier +1312": 7, "carrier +1212": 1}, byEndpoint,
		"New York through mobile, Chicago and the call naming its switch through the default trunk")
}
