package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/callgate/callgate/controller"
)

// Agents keeps the agent registry and connects answered campaign calls to
// agents: it implements controller.AgentService and controller.AgentDesk.
type Agents struct {
	store controller.AgentStore
	calls controller.CallStore
	log   *slog.Logger
	// OnChange, when set, sees every agent state change made here (tests
	// wait on it).
	OnChange func(controller.Agent)

	mu      sync.Mutex
	changed chan struct{} // closed when an agent may have become available here
}

var (
	_ controller.AgentService = (*Agents)(nil)
	_ controller.AgentDesk    = (*Agents)(nil)
)

// NewAgents returns the agent service over store; calls is where wrap-up
// dispositions are written.
func NewAgents(store controller.AgentStore, calls controller.CallStore, log *slog.Logger) *Agents {
	if log == nil {
		log = slog.Default()
	}
	return &Agents{store: store, calls: calls, log: log.With("component", "agents"), changed: make(chan struct{})}
}

// agentEndpointRE is the form of an agent's dial string: what a
// switch's bridge takes, with nothing that could split its arguments.
var agentEndpointRE = regexp.MustCompile(`^[A-Za-z0-9_./@:;=+-]{1,256}$`)

// CreateAgent validates a and stores it offline.
func (ag *Agents) CreateAgent(ctx context.Context, a controller.Agent) (controller.Agent, error) {
	a.TenantID = tenantOr(a.TenantID)
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" || len(a.Name) > 200 {
		return a, controller.FieldError("name", "must be 1 to 200 characters")
	}
	if err := controller.CheckText("name", a.Name); err != nil {
		return a, err
	}
	if !agentEndpointRE.MatchString(a.Endpoint) {
		return a, controller.FieldError("endpoint", "must be a dial string of letters, digits and /_.@:;=+- (e.g. user/1001)")
	}
	if len(a.Skills) > 32 {
		return a, controller.FieldError("skills", "at most 32")
	}
	for i, sk := range a.Skills {
		if !leadKey.MatchString(sk) {
			return a, controller.FieldError(fmt.Sprintf("skills[%d]", i), "letters, digits, '_', '.', '-'")
		}
	}
	if len(a.CampaignIDs) > 100 {
		return a, controller.FieldError("campaign_ids", "at most 100")
	}
	for i, id := range a.CampaignIDs {
		if _, err := uuid.Parse(id); err != nil {
			return a, controller.FieldError(fmt.Sprintf("campaign_ids[%d]", i), "not a campaign ID")
		}
	}
	if a.WrapSeconds == 0 {
		a.WrapSeconds = 30
	}
	if a.WrapSeconds < 1 || a.WrapSeconds > 3600 {
		return a, controller.FieldError("wrap_seconds", "must be between 1 and 3600")
	}
	return ag.store.CreateAgent(ctx, a)
}

// Agents lists a tenant's agents.
func (ag *Agents) Agents(ctx context.Context, tenant string) ([]controller.Agent, error) {
	return ag.store.ListAgents(ctx, tenantOr(tenant))
}

// Agent returns one agent.
func (ag *Agents) Agent(ctx context.Context, tenant, id string) (controller.Agent, error) {
	return ag.store.GetAgent(ctx, tenantOr(tenant), id)
}

// SetAgentState logs an agent in, pauses or logs them out.
func (ag *Agents) SetAgentState(ctx context.Context, tenant, id string, state controller.AgentState) (controller.Agent, error) {
	from := []controller.AgentState{controller.AgentOffline, controller.AgentAvailable,
		controller.AgentPaused, controller.AgentWrapUp}
	switch state {
	case controller.AgentAvailable, controller.AgentPaused, controller.AgentOffline:
	default:
		return controller.Agent{}, controller.FieldError("state", "must be available, paused or offline")
	}
	a, err := ag.store.MoveAgent(ctx, tenantOr(tenant), id, from, state)
	if err == nil {
		ag.changedTo(a)
	}
	return a, err
}

// WrapUp ends an agent's wrap-up with the call's disposition and tags.
func (ag *Agents) WrapUp(ctx context.Context, tenant, id, disposition string, tags map[string]string) (controller.Agent, error) {
	tenant = tenantOr(tenant)
	if disposition == "" {
		return controller.Agent{}, controller.FieldError("disposition", "is required")
	}
	if err := controller.CheckTags(tags, disposition); err != nil {
		return controller.Agent{}, err
	}
	cur, err := ag.store.GetAgent(ctx, tenant, id)
	if err != nil {
		return cur, err
	}
	if cur.State != controller.AgentWrapUp || cur.CallID == "" {
		return cur, controller.Errorf(controller.ECONFLICT, "agent %s is %s, not in wrap-up", id, cur.State)
	}
	// The disposition first: a lead is settled from its call, and an agent
	// free again before it is written could be given the next call of a
	// campaign that has not seen it.
	if _, err := ag.calls.TagCall(ctx, tenant, cur.CallID, tags, disposition); err != nil {
		return cur, fmt.Errorf("recording the disposition of call %s: %w", cur.CallID, err)
	}
	a, err := ag.store.MoveAgent(ctx, tenant, id, []controller.AgentState{controller.AgentWrapUp}, controller.AgentAvailable)
	if err == nil {
		ag.changedTo(a)
	}
	return a, err
}

// changedTo reports a state change and wakes calls waiting for an agent.
func (ag *Agents) changedTo(a controller.Agent) {
	if a.State == controller.AgentAvailable {
		ag.wake()
	}
	if f := ag.OnChange; f != nil {
		f(a)
	}
}

func (ag *Agents) wake() {
	ag.mu.Lock()
	close(ag.changed)
	ag.changed = make(chan struct{})
	ag.mu.Unlock()
}

// agentRetry is how often a call waiting for an agent looks again, for
// agents freed by another controller (those freed here wake it at once).
const agentRetry = 100 * time.Millisecond

// Connect reserves an available agent of the call's campaign, waiting up
// to wait for one.
func (ag *Agents) Connect(ctx context.Context, call controller.Call, wait time.Duration) (controller.AgentClaim, bool, error) {
	// A preview call goes to the agent who accepted its lead.
	if claim, ok, err := ag.store.AssignAcceptedAgent(ctx, call); err != nil || ok {
		if ok {
			ag.log.Info("preview agent connected", "call_id", call.ID, "agent_id", claim.AgentID)
		}
		return claim, ok, err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		ag.mu.Lock()
		changed := ag.changed
		ag.mu.Unlock()
		claim, ok, err := ag.store.ClaimAgent(ctx, tenantOr(call.TenantID), call.CampaignID, call.ID)
		if err != nil || ok {
			if ok {
				ag.log.Info("agent connected", "call_id", call.ID, "agent_id", claim.AgentID)
				ag.report(ctx, tenantOr(call.TenantID), claim.AgentID)
			}
			return claim, ok, err
		}
		retry := time.NewTimer(agentRetry)
		select {
		case <-ctx.Done():
			retry.Stop()
			return claim, false, ctx.Err()
		case <-deadline.C:
			retry.Stop()
			return claim, false, nil
		case <-changed:
		case <-retry.C:
		}
		retry.Stop()
	}
}

// Finish records the end of an agent's bridge.
func (ag *Agents) Finish(ctx context.Context, claim controller.AgentClaim, call controller.Call, bridged bool) error {
	if err := ag.store.FinishAgentCall(ctx, claim.AgentID, call.ID, bridged); err != nil {
		return err
	}
	if !bridged {
		ag.wake()
	}
	ag.report(ctx, tenantOr(call.TenantID), claim.AgentID)
	return nil
}

// report hands an agent's new state to OnChange.
func (ag *Agents) report(ctx context.Context, tenant, id string) {
	if ag.OnChange == nil {
		return
	}
	if a, err := ag.store.GetAgent(ctx, tenant, id); err == nil {
		ag.OnChange(a)
	}
}

// EndWrapUps makes available the agents whose wrap-up timed out (the
// campaign runner calls it on every pass).
func (ag *Agents) EndWrapUps(ctx context.Context) {
	n, err := ag.store.EndWrapUps(ctx)
	if err != nil {
		if ctx.Err() == nil {
			ag.log.Warn("ending wrap-ups", "err", err)
		}
		return
	}
	if n > 0 {
		ag.wake()
	}
}
