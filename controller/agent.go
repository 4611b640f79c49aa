package controller

import (
	"context"
	"time"
)

// AgentState is where an agent is: what the dialer may do with them.
type AgentState string

const (
	AgentOffline   AgentState = "offline"   // not logged in
	AgentAvailable AgentState = "available" // waiting for a call
	AgentOnCall    AgentState = "on_call"   // bridged (or being bridged) to a call
	AgentWrapUp    AgentState = "wrap_up"   // the call ended; recording its outcome
	AgentPaused    AgentState = "paused"    // logged in, taking no calls
)

// Agent is a person who takes the calls campaigns connect.
type Agent struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenant_id"`
	Name        string     `json:"name"`
	Endpoint    string     `json:"endpoint"`         // dial string the switch bridges to, e.g. user/1001
	Skills      []string   `json:"skills,omitempty"` // free labels
	CampaignIDs []string   `json:"campaign_ids"`     // campaigns they take calls for; empty: all
	WrapSeconds int        `json:"wrap_seconds"`     // wrap-up ends by itself after this
	State       AgentState `json:"state"`
	StateSince  time.Time  `json:"state_since"`
	CallID      CallID     `json:"call_id,omitempty"` // the call on_call or wrap_up is about
	CreatedAt   time.Time  `json:"created_at"`
	// Time in each state so far (the current state's time up to
	// StateSince): utilisation is (OnCall + WrapUp) / LoggedIn.
	Calls           int `json:"calls"`
	OnCallSeconds   int `json:"on_call_seconds"`
	WrapUpSeconds   int `json:"wrap_up_seconds"`
	LoggedInSeconds int `json:"logged_in_seconds"`
}

// IdleNoAgents says an agent-mode campaign is not dialling because none of
// its agents can take a call (see CampaignStatus.Idle).
const IdleNoAgents = "no_agents"

// AgentCounts are a campaign's agents by state.
type AgentCounts struct {
	LoggedIn  int `json:"logged_in"` // not offline
	Available int `json:"available"`
	OnCall    int `json:"on_call"`
	WrapUp    int `json:"wrap_up"`
	Paused    int `json:"paused"`
}

// PreviewLead is a lead offered to an agent in a preview campaign.
type PreviewLead struct {
	CampaignID string `json:"campaign_id"`
	CampaignLead
}

// LiveCalls are a campaign's calls in progress that no agent has taken.
type LiveCalls struct {
	RingingSince []time.Time // when each call not yet answered was created
	Waiting      int         // answered, waiting for an agent
}

// AgentClaim is an agent reserved for one call.
type AgentClaim struct {
	AgentID  string
	Endpoint string
}

// AgentDesk connects answered calls to agents. Implemented by
// controller/dialer; the IVR runner's agent node uses it.
type AgentDesk interface {
	// Connect reserves an available agent of the call's campaign for it,
	// waiting up to wait for one to become available. ok is false when
	// none did.
	Connect(ctx context.Context, call Call, wait time.Duration) (claim AgentClaim, ok bool, err error)
	// Finish records the end of the bridge: bridged, the agent goes to
	// wrap-up; not bridged (the agent did not answer), back to available.
	Finish(ctx context.Context, claim AgentClaim, call Call, bridged bool) error
}

// AgentService is what the HTTP API drives for agents. Implemented by
// controller/dialer.
type AgentService interface {
	// CreateAgent validates a and stores it offline. Returns EINVALID
	// naming the field.
	CreateAgent(ctx context.Context, a Agent) (Agent, error)
	// Agents lists a tenant's agents.
	Agents(ctx context.Context, tenant string) ([]Agent, error)
	// Agent returns one agent. Returns ENOTFOUND.
	Agent(ctx context.Context, tenant, id string) (Agent, error)
	// SetAgentState logs an agent in (available), pauses or logs them out.
	// Ending wrap-up this way leaves the call's disposition unset. Returns
	// ENOTFOUND, EINVALID for another state, ECONFLICT while on a call.
	SetAgentState(ctx context.Context, tenant, id string, state AgentState) (Agent, error)
	// NextPreviewLead offers an available agent the next due lead of the
	// running preview campaigns they take calls for, reserved for them
	// until they accept or skip it (or the offer expires). ok is false when
	// none is due. Returns ENOTFOUND, ECONFLICT when the agent is not
	// available.
	NextPreviewLead(ctx context.Context, tenant, id string) (lead PreviewLead, ok bool, err error)
	// AcceptPreviewLead dials the lead on offer to the agent; the call is
	// connected to them when answered. Returns ENOTFOUND, ECONFLICT when
	// nothing is on offer.
	AcceptPreviewLead(ctx context.Context, tenant, id string) (PreviewLead, error)
	// SkipPreviewLead gives the lead on offer back, due again later.
	// Returns ENOTFOUND, ECONFLICT when nothing is on offer.
	SkipPreviewLead(ctx context.Context, tenant, id string) error
	// WrapUp ends an agent's wrap-up with the call's disposition and tags:
	// the agent is available again. Returns ENOTFOUND, EINVALID for bad
	// tags, ECONFLICT when the agent is not in wrap-up.
	WrapUp(ctx context.Context, tenant, id, disposition string, tags map[string]string) (Agent, error)
}

// AgentStore persists agents and their states. Implemented by
// controller/postgres. Every state change adds the time spent in the
// state it leaves to the agent's totals.
type AgentStore interface {
	CreateAgent(ctx context.Context, a Agent) (Agent, error)
	ListAgents(ctx context.Context, tenant string) ([]Agent, error)
	GetAgent(ctx context.Context, tenant, id string) (Agent, error)
	// MoveAgent changes an agent's state if it is in one of from. Returns
	// ENOTFOUND, ECONFLICT (with the agent as it is) otherwise.
	MoveAgent(ctx context.Context, tenant, id string, from []AgentState, to AgentState) (Agent, error)
	// ClaimAgent moves the longest-waiting available agent of the campaign
	// (or of every campaign) to on_call for call, and assigns the call to
	// them. ok is false when none is available.
	ClaimAgent(ctx context.Context, tenant, campaign string, call CallID) (AgentClaim, bool, error)
	// FinishAgentCall moves the agent on call from on_call to wrap_up
	// (bridged) or available (not).
	FinishAgentCall(ctx context.Context, agentID string, call CallID, bridged bool) error
	// EndWrapUps makes available the agents whose wrap-up outlasted their
	// wrap_seconds. Returns how many.
	EndWrapUps(ctx context.Context) (int, error)
	// CampaignAgents counts the agents taking calls for a campaign.
	CampaignAgents(ctx context.Context, tenant, campaign string) (AgentCounts, error)
	// CampaignAgentTime sums, over the agents taking a campaign's calls,
	// the seconds spent on calls or in wrap-up and the seconds logged in,
	// each up to now.
	CampaignAgentTime(ctx context.Context, tenant, campaign string) (busy, loggedIn float64, err error)
	// ReservePreviewLead, AcceptPreviewLead and SkipPreviewLead keep
	// preview offers; AssignAcceptedAgent connects an answered call to the
	// agent who accepted its lead; ReleaseAgents frees agents and offers
	// nothing else will (see controller/postgres).
	ReservePreviewLead(ctx context.Context, tenant, agentID string) (PreviewLead, bool, error)
	AcceptPreviewLead(ctx context.Context, tenant, agentID string) (PreviewLead, error)
	SkipPreviewLead(ctx context.Context, tenant, agentID string, delay time.Duration) error
	AssignAcceptedAgent(ctx context.Context, call Call) (AgentClaim, bool, error)
	ReleaseAgents(ctx context.Context, offerTTL time.Duration) (int, error)
	// CampaignLiveCalls reports a campaign's calls no agent has taken yet.
	CampaignLiveCalls(ctx context.Context, campaign string) (LiveCalls, error)
}
