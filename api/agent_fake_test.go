package api_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// Acme's agents (see the world): alice in wrap-up after her call, bob on
// his. Agent tokens name them: an agent token's agent ID is the agent's
// id. carol is globex's agent token; globex stores no agent.
const (
	agentAlice = "aaaaaaaa-5555-4000-8000-00000000a11c"
	agentBob   = "aaaaaaaa-5555-4000-8000-000000000b0b"
	agentCarol = "bbbbbbbb-5555-4000-8000-0000000ca201"
	// bobEndpoint reaches bob through a carrier: a dial string holding a
	// phone number, masked for every role but admin.
	bobEndpoint = "sofia/gateway/carrier/+15557779001"
)

// agentMarkers are acme's agent IDs, which globex must never see.
var agentMarkers = []string{agentAlice, agentBob}

// validAgent is a valid body of POST /v1/agents.
const validAgent = `{"name":"night shift","endpoint":"user/1002","skills":["spanish"],"wrap_seconds":20}`

// fakeAgents is an in-memory, tenant-aware controller.AgentService that
// checks agents and moves them between states as controller/dialer and its
// store do. Its names differ from fakeCampaigns' (the world embeds both).
type fakeAgents struct {
	agentMu  sync.Mutex
	agentSeq int
	agents   map[string]controller.Agent
	// wrapUps are the dispositions written to calls, by call.
	wrapUps map[controller.CallID]string
	// offers are the agents holding a preview offer.
	offers map[string]bool
}

var _ controller.AgentService = (*fakeAgents)(nil)

func newFakeAgents() *fakeAgents {
	return &fakeAgents{agents: map[string]controller.Agent{}, wrapUps: map[controller.CallID]string{}}
}

// seedAgents stores acme's agents.
func (f *fakeAgents) seedAgents() {
	f.agents[agentAlice] = controller.Agent{ID: agentAlice, TenantID: tenantA, Name: "acme alice", Endpoint: "user/1001",
		Skills: []string{"spanish"}, CampaignIDs: []string{campaignA}, WrapSeconds: 30, State: controller.AgentWrapUp,
		StateSince: fixedTime, CallID: callAlice, CreatedAt: fixedTime, Calls: 3, OnCallSeconds: 300, WrapUpSeconds: 60, LoggedInSeconds: 1200}
	f.agents[agentBob] = controller.Agent{ID: agentBob, TenantID: tenantA, Name: "acme bob", Endpoint: bobEndpoint,
		CampaignIDs: []string{}, WrapSeconds: 30, State: controller.AgentOnCall, StateSince: fixedTime, CallID: callBob,
		CreatedAt: fixedTime, Calls: 1}
	// alice holds a preview offer (made before her last call).
	f.offers = map[string]bool{agentAlice: true}
}

// agentSnapshot is everything the fake stores, as comparable text.
func (f *fakeAgents) agentSnapshot() string {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	return fmt.Sprintf("%+v", []any{f.agents, f.wrapUps, f.offers})
}

// agent returns the tenant's agent; callers hold f.agentMu.
func (f *fakeAgents) agent(tenant, id string) (controller.Agent, error) {
	a, ok := f.agents[id]
	if !ok || a.TenantID != tenant {
		return controller.Agent{}, controller.Errorf(controller.ENOTFOUND, "agent not found")
	}
	return a, nil
}

// The forms controller/dialer checks.
var (
	fakeEndpoint = regexp.MustCompile(`^[A-Za-z0-9_./@:;=+-]{1,256}$`)
	fakeLabel    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
	fakeUUID     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

func (f *fakeAgents) CreateAgent(_ context.Context, a controller.Agent) (controller.Agent, error) {
	a.Name = strings.TrimSpace(a.Name)
	switch {
	case a.Name == "" || len(a.Name) > 200:
		return controller.Agent{}, controller.FieldError("name", "must be 1 to 200 characters")
	case !fakeEndpoint.MatchString(a.Endpoint):
		return controller.Agent{}, controller.FieldError("endpoint", "must be a dial string")
	case len(a.Skills) > 32:
		return controller.Agent{}, controller.FieldError("skills", "at most 32")
	case len(a.CampaignIDs) > 100:
		return controller.Agent{}, controller.FieldError("campaign_ids", "at most 100")
	}
	if err := controller.CheckText("name", a.Name); err != nil {
		return controller.Agent{}, err
	}
	for i, sk := range a.Skills {
		if !fakeLabel.MatchString(sk) {
			return controller.Agent{}, controller.FieldError(fmt.Sprintf("skills[%d]", i), "letters, digits, '_', '.', '-'")
		}
	}
	for i, id := range a.CampaignIDs {
		if !fakeUUID.MatchString(id) {
			return controller.Agent{}, controller.FieldError(fmt.Sprintf("campaign_ids[%d]", i), "not a campaign ID")
		}
	}
	if a.WrapSeconds == 0 {
		a.WrapSeconds = 30
	}
	if a.WrapSeconds < 1 || a.WrapSeconds > 3600 {
		return controller.Agent{}, controller.FieldError("wrap_seconds", "must be between 1 and 3600")
	}
	if a.CampaignIDs == nil {
		a.CampaignIDs = []string{}
	}
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	f.agentSeq++
	a.ID = fmt.Sprintf("dddddddd-0000-4000-8000-%012d", f.agentSeq)
	a.State, a.StateSince, a.CreatedAt = controller.AgentOffline, fixedTime, fixedTime
	f.agents[a.ID] = a
	return a, nil
}

func (f *fakeAgents) Agents(_ context.Context, tenant string) ([]controller.Agent, error) {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	var out []controller.Agent
	for _, id := range slices.Sorted(maps.Keys(f.agents)) {
		if a := f.agents[id]; a.TenantID == tenant {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeAgents) Agent(_ context.Context, tenant, id string) (controller.Agent, error) {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	return f.agent(tenant, id)
}

// move changes an agent's state if it is in one of from, as the store's
// MoveAgent does; callers hold f.agentMu.
func (f *fakeAgents) move(tenant, id string, from []controller.AgentState, to controller.AgentState) (controller.Agent, error) {
	a, err := f.agent(tenant, id)
	if err != nil {
		return a, err
	}
	if !slices.Contains(from, a.State) {
		return a, controller.Errorf(controller.ECONFLICT, "agent %s is %s", id, a.State)
	}
	a.State, a.StateSince, a.CallID = to, fixedTime.Add(time.Minute), ""
	f.agents[id] = a
	return a, nil
}

func (f *fakeAgents) SetAgentState(_ context.Context, tenant, id string, state controller.AgentState) (controller.Agent, error) {
	switch state {
	case controller.AgentAvailable, controller.AgentPaused, controller.AgentOffline:
	default:
		return controller.Agent{}, controller.FieldError("state", "must be available, paused or offline")
	}
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	return f.move(tenant, id, []controller.AgentState{controller.AgentOffline, controller.AgentAvailable,
		controller.AgentPaused, controller.AgentWrapUp}, state)
}

func (f *fakeAgents) WrapUp(_ context.Context, tenant, id, disposition string, tags map[string]string) (controller.Agent, error) {
	if disposition == "" {
		return controller.Agent{}, controller.FieldError("disposition", "is required")
	}
	if err := controller.CheckTags(tags, disposition); err != nil {
		return controller.Agent{}, err
	}
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	cur, err := f.agent(tenant, id)
	if err != nil {
		return cur, err
	}
	if cur.State != controller.AgentWrapUp || cur.CallID == "" {
		return cur, controller.Errorf(controller.ECONFLICT, "agent %s is %s, not in wrap-up", id, cur.State)
	}
	f.wrapUps[cur.CallID] = disposition
	return f.move(tenant, id, []controller.AgentState{controller.AgentWrapUp}, controller.AgentAvailable)
}

// wrapUpOf returns the disposition written to a call by a wrap-up.
func (f *fakeAgents) wrapUpOf(call controller.CallID) string {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	return f.wrapUps[call]
}

// previewPhone is the number of the lead the fake offers: masked for
// every role but admin.
const previewPhone = "+15557770042"

// NextPreviewLead offers an available agent one lead, the same each time.
func (f *fakeAgents) NextPreviewLead(_ context.Context, tenant, id string) (controller.PreviewLead, bool, error) {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	a, err := f.agent(tenant, id)
	if err != nil {
		return controller.PreviewLead{}, false, err
	}
	if f.offers[id] { // an agent holding an offer gets it again
		return fakePreviewLead(), true, nil
	}
	if a.State != controller.AgentAvailable {
		return controller.PreviewLead{}, false, controller.Errorf(controller.ECONFLICT, "agent is %s", a.State)
	}
	if f.offers == nil {
		f.offers = map[string]bool{}
	}
	f.offers[id] = true
	return fakePreviewLead(), true, nil
}

func fakePreviewLead() controller.PreviewLead {
	return controller.PreviewLead{CampaignID: campaignA, CampaignLead: controller.CampaignLead{
		Lead:   controller.Lead{ID: 42, Phone: previewPhone, Name: "Lead " + previewPhone},
		Status: "preview"}}
}

// AcceptPreviewLead puts the agent on the lead's call.
func (f *fakeAgents) AcceptPreviewLead(ctx context.Context, tenant, id string) (controller.PreviewLead, error) {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	a, err := f.agent(tenant, id)
	if err != nil {
		return controller.PreviewLead{}, err
	}
	if !f.offers[id] {
		return controller.PreviewLead{}, controller.Errorf(controller.ECONFLICT, "nothing on offer")
	}
	delete(f.offers, id)
	a.State = controller.AgentOnCall
	f.agents[id] = a
	return fakePreviewLead(), nil
}

// SkipPreviewLead withdraws the offer.
func (f *fakeAgents) SkipPreviewLead(_ context.Context, tenant, id string) error {
	f.agentMu.Lock()
	defer f.agentMu.Unlock()
	if _, err := f.agent(tenant, id); err != nil {
		return err
	}
	if !f.offers[id] {
		return controller.Errorf(controller.ECONFLICT, "nothing on offer")
	}
	delete(f.offers, id)
	return nil
}
