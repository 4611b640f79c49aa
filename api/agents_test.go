package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// setupAgents serves the world's agent service; requests carry an admin
// token of acme, which owns the world's agents.
func setupAgents(t *testing.T) (*bundle, *world) {
	t.Helper()
	w := newWorld()
	b := setup(t)
	b.srv = api.New(api.Config{Auth: b.tokens}, w, nil, nil)
	b.srv.SetAgents(w)
	b.srv.SetAudit(w.audit)
	b.h = b.srv.Handler()
	b.admin = b.tokens.issue(t, tenantA, controller.RoleAdmin, "")
	return b, w
}

func TestAgentsAPI(t *testing.T) {
	t.Parallel()
	b, w := setupAgents(t)

	rec := b.do(t, http.MethodPost, "/v1/agents", `{"name":" Night shift ","endpoint":"user/1002","skills":["spanish","billing"],`+
		`"campaign_ids":["`+campaignA+`"],"wrap_seconds":45}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var a controller.Agent
	decode(t, rec, &a)
	require.Equal(t, "/v1/agents/"+a.ID, rec.Header().Get("Location"))
	require.Equal(t, tenantA, a.TenantID, "the tenant is the token's")
	require.Equal(t, "Night shift", a.Name)
	require.Equal(t, controller.AgentOffline, a.State, "a new agent is logged out")
	require.Equal(t, []string{"spanish", "billing"}, a.Skills)
	require.Equal(t, []string{campaignA}, a.CampaignIDs)
	require.Equal(t, 45, a.WrapSeconds)
	require.Equal(t, "POST /v1/agents", lastAudit(w).Action)
	require.Equal(t, "agent "+a.ID, lastAudit(w).Detail)

	rec = b.do(t, http.MethodPost, "/v1/agents", `{"name":"Day","endpoint":"user/1003"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"campaign_ids":[]`, "every campaign: [], not null")
	require.Contains(t, rec.Body.String(), `"wrap_seconds":30`, "the service's default")

	rec = b.do(t, http.MethodGet, "/v1/agents/"+a.ID, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got controller.Agent
	decode(t, rec, &got)
	require.Equal(t, a, got)

	rec = b.do(t, http.MethodGet, "/v1/agents", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct{ Agents []controller.Agent }
	decode(t, rec, &list)
	require.Len(t, list.Agents, 4, "alice, bob and the two new ones")
	require.Contains(t, rec.Body.String(), bobEndpoint, "admins see the endpoint whole")

	// Logging in, pausing and out.
	for _, st := range []controller.AgentState{controller.AgentAvailable, controller.AgentPaused, controller.AgentOffline} {
		rec = b.do(t, http.MethodPost, "/v1/agents/"+a.ID+"/state", `{"state":"`+string(st)+`"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		decode(t, rec, &got)
		require.Equal(t, st, got.State)
		require.Equal(t, "state "+string(st), lastAudit(w).Detail)
	}

	// Wrap-up: alice records her call's disposition and is available again.
	rec = b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/wrapup", `{"disposition":"sale","tags":{"interest":"high"}}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &got)
	require.Equal(t, controller.AgentAvailable, got.State)
	require.Equal(t, "sale", w.wrapUpOf(callAlice))
	require.Equal(t, "disposition sale", lastAudit(w).Detail)
	// Not in wrap-up any more.
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/wrapup", `{"disposition":"sale"}`),
		http.StatusConflict, "conflict", "")
}

func TestAgentsRefuseBadBodies(t *testing.T) {
	t.Parallel()
	b, w := setupAgents(t)
	before := w.agentSnapshot()
	for _, tt := range []struct{ path, body, field string }{
		// Members the server sets are named, not ignored.
		{"/v1/agents", `{"name":"x","endpoint":"user/1","id":"` + agentAlice + `"}`, "id"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","state":"available"}`, "state"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","state_since":"2025-01-01T00:00:00Z"}`, "state_since"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","on_call_seconds":1}`, "on_call_seconds"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","tenant_id":"globex"}`, "tenant_id"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","call_id":"` + string(callAlice) + `"}`, "call_id"},
		// Types, then the service's checks.
		{"/v1/agents", `{"name":"x","endpoint":"user/1","wrap_seconds":"30"}`, "wrap_seconds"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","skills":["a",2]}`, "skills[1]"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","phone":"+15557770001"}`, "phone"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1 &park()"}`, "endpoint"},
		{"/v1/agents", `{"name":"","endpoint":"user/1"}`, "name"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","campaign_ids":["spring"]}`, "campaign_ids[0]"},
		{"/v1/agents", `{"name":"x","endpoint":"user/1","wrap_seconds":7200}`, "wrap_seconds"},
		{"/v1/agents/" + agentAlice + "/state", `{}`, "state"},
		{"/v1/agents/" + agentAlice + "/state", `{"state":"on_call"}`, "state"},
		{"/v1/agents/" + agentAlice + "/state", `{"state":"available","agent_id":"x"}`, "agent_id"},
		{"/v1/agents/" + agentAlice + "/wrapup", `{"tags":{"interest":"high"}}`, "disposition"},
		{"/v1/agents/" + agentAlice + "/wrapup", `{"disposition":"Sale!"}`, "disposition"},
		{"/v1/agents/" + agentAlice + "/wrapup", `{"disposition":"sale","tags":{"interest":1}}`, "tags.interest"},
	} {
		rec := b.do(t, http.MethodPost, tt.path, tt.body)
		requireError(t, rec, http.StatusBadRequest, "invalid", tt.field)
		require.NotContains(t, rec.Body.String(), "15557770001")
	}
	require.Equal(t, before, w.agentSnapshot(), "nothing was stored")
}

func TestAgentsNotFoundAndConflict(t *testing.T) {
	t.Parallel()
	b, _ := setupAgents(t)
	for _, path := range []string{"/v1/agents/" + unknownID, "/v1/agents/not-a-uuid"} {
		requireError(t, b.do(t, http.MethodGet, path, ""), http.StatusNotFound, "not_found", "")
		requireError(t, b.do(t, http.MethodPost, path+"/state", `{"state":"paused"}`), http.StatusNotFound, "not_found", "")
		requireError(t, b.do(t, http.MethodPost, path+"/wrapup", `{"disposition":"sale"}`), http.StatusNotFound, "not_found", "")
	}
	// Another tenant's admin does not find acme's agents.
	globex := "Bearer " + b.tokens.issue(t, tenantB, controller.RoleAdmin, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/agents/"+agentAlice, "", "Authorization", globex), http.StatusNotFound, "not_found", "")
	rec := b.do(t, http.MethodGet, "/v1/agents", "", "Authorization", globex)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"agents":[]}`, rec.Body.String())

	// Bob is on a call: he cannot be paused or logged out, nor wrap up yet.
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentBob+"/state", `{"state":"paused"}`), http.StatusConflict, "conflict", "")
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentBob+"/wrapup", `{"disposition":"sale"}`), http.StatusConflict, "conflict", "")
	requireError(t, b.do(t, http.MethodGet, "/v1/agents?state=available", ""), http.StatusBadRequest, "invalid", "state")
}

// TestAgentReachesOnlyItself: an agent token reads and drives its own
// agent, and any other is 404 (audited as a refusal) without the service
// being asked.
func TestAgentReachesOnlyItself(t *testing.T) {
	t.Parallel()
	b, w := setupAgents(t)
	alice := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAgent, agentAlice)

	rec := b.do(t, http.MethodGet, "/v1/agents/"+agentAlice, "", "Authorization", alice)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got controller.Agent
	decode(t, rec, &got)
	require.Equal(t, agentAlice, got.ID)
	require.Equal(t, controller.AgentWrapUp, got.State)
	require.Equal(t, callAlice, got.CallID)

	rec = b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/wrapup", `{"disposition":"callback"}`, "Authorization", alice)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "callback", w.wrapUpOf(callAlice))
	rec = b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/state", `{"state":"paused"}`, "Authorization", alice)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &got)
	require.Equal(t, controller.AgentPaused, got.State)

	before := w.agentSnapshot()
	for _, r := range []struct{ method, path, body, action string }{
		{http.MethodGet, "/v1/agents/" + agentBob, "", "GET /v1/agents/:id"},
		{http.MethodPost, "/v1/agents/" + agentBob + "/state", `{"state":"offline"}`, "POST /v1/agents/:id/state"},
		{http.MethodPost, "/v1/agents/" + agentBob + "/wrapup", `{"disposition":"sale"}`, "POST /v1/agents/:id/wrapup"},
		{http.MethodGet, "/v1/agents/" + unknownID, "", "GET /v1/agents/:id"},
		// Not the token's agent ID as written.
		{http.MethodGet, "/v1/agents/" + strings.ToUpper(agentAlice), "", "GET /v1/agents/:id"},
	} {
		rec := b.do(t, r.method, r.path, r.body, "Authorization", alice)
		requireError(t, rec, http.StatusNotFound, "not_found", "")
		e := lastAudit(w)
		require.Equal(t, "denied", e.Outcome, r.path)
		require.Equal(t, r.action, e.Action)
		require.Equal(t, tenantA, e.TenantID)
	}
	require.Equal(t, before, w.agentSnapshot(), "bob was not touched")

	// An agent neither creates nor lists agents.
	requireError(t, b.do(t, http.MethodGet, "/v1/agents", "", "Authorization", alice), http.StatusForbidden, "forbidden", "")
	requireError(t, b.do(t, http.MethodPost, "/v1/agents", validAgent, "Authorization", alice), http.StatusForbidden, "forbidden", "")
}

// TestAgentEndpointMasked: an auditor lists agents with a number in an
// endpoint masked; nothing else of an agent changes.
func TestAgentEndpointMasked(t *testing.T) {
	t.Parallel()
	b, _ := setupAgents(t)
	auditor := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAuditor, "")
	rec := b.do(t, http.MethodGet, "/v1/agents", "", "Authorization", auditor)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.NotContains(t, rec.Body.String(), "5557779001")
	var list struct{ Agents []controller.Agent }
	decode(t, rec, &list)
	require.Len(t, list.Agents, 2)
	byID := map[string]controller.Agent{}
	for _, a := range list.Agents {
		byID[a.ID] = a
	}
	require.Equal(t, "sofia/gateway/carrier/****9001", byID[agentBob].Endpoint)
	require.Equal(t, "user/1001", byID[agentAlice].Endpoint, "a short extension is no phone number")
	require.Equal(t, "acme alice", byID[agentAlice].Name)
	requireError(t, b.do(t, http.MethodGet, "/v1/agents/"+agentAlice, "", "Authorization", auditor), http.StatusForbidden, "forbidden", "")
}

// TestAgentsUnavailable: without an agent service every agent route
// answers 503 in the error shape.
func TestAgentsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := 0
	for _, rp := range b.srv.Policies() {
		if !strings.HasPrefix(rp.Path, "/v1/agents") {
			continue
		}
		req := httptest.NewRequest(rp.Method, target(rp.Path, false), nil)
		requireError(t, b.serve(req), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
		n++
	}
	require.Equal(t, 8, n)
}

func TestAgentPreview(t *testing.T) {
	t.Parallel()
	b, _ := setupAgents(t)
	alice := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAgent, agentAlice)
	// alice holds an offer: asking again returns it, masked for her.
	rec := b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/preview", "", "Authorization", alice)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.NotContains(t, rec.Body.String(), previewPhone[2:], "the agent sees the number masked")
	var lead controller.PreviewLead
	decode(t, rec, &lead)
	require.Equal(t, campaignA, lead.CampaignID)

	rec = b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/preview/accept", "{}", "Authorization", alice)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentAlice+"/preview/skip", "", "Authorization", alice),
		http.StatusConflict, "conflict", "")
	// bob is on a call and holds no offer.
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentBob+"/preview", ""), http.StatusConflict, "conflict", "")
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentBob+"/preview", `{"x":1}`), http.StatusBadRequest, "invalid", "x")
	// Another agent's offers are not found.
	requireError(t, b.do(t, http.MethodPost, "/v1/agents/"+agentBob+"/preview", "", "Authorization", alice),
		http.StatusNotFound, "not_found", "")
}
