package dialer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/pacing"
)

// pacers holds the pacer of each agent-mode campaign this controller
// dispatches. Each controller learns from the leads it settles; the
// inputs (agents, calls in progress) come from the database on every pass.
type pacers struct {
	mu sync.Mutex
	m  map[string]*pacing.Pacer
}

// get returns the campaign's pacer for its mode, creating it (or
// replacing it when the mode changed).
func (ps *pacers) get(c controller.Campaign) (*pacing.Pacer, error) {
	mode := pacing.Progressive
	if c.Mode == controller.ModePredictive {
		mode = pacing.Predictive
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]*pacing.Pacer{}
	}
	if p := ps.m[c.ID]; p != nil && p.Snapshot().Mode == mode {
		return p, nil
	}
	p, err := pacing.New(pacing.Config{Mode: mode})
	if err != nil {
		return nil, fmt.Errorf("pacer of campaign %s: %w", c.ID, err)
	}
	ps.m[c.ID] = p
	return p, nil
}

// peek returns the campaign's pacer if there is one.
func (ps *pacers) peek(id string) *pacing.Pacer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.m[id]
}

// agentMode reports whether a campaign's calls go to agents.
func agentMode(m controller.DialMode) bool {
	return m == controller.ModeProgressive || m == controller.ModePredictive
}

// agentBudget is how many calls an agent-mode campaign may place now:
// what its pacer decides from the agents taking its calls and its calls in
// progress. idle says why none, when none.
func (cs *Campaigns) agentBudget(ctx context.Context, c controller.Campaign) (int, string, error) {
	p, err := cs.pacers.get(c)
	if err != nil {
		return 0, "", err
	}
	k, err := cs.store.CampaignAgents(ctx, c.TenantID, c.ID)
	if err != nil {
		return 0, "", err
	}
	if k.Available+k.OnCall+k.WrapUp == 0 {
		return 0, controller.IdleNoAgents, nil
	}
	live, err := cs.store.CampaignLiveCalls(ctx, c.ID)
	if err != nil {
		return 0, "", err
	}
	n := p.ToDial(cs.cfg.Now(), pacing.State{AgentsLoggedIn: k.LoggedIn, AgentsIdle: k.Available,
		AgentsWrapping: k.WrapUp, AgentsPaused: k.Paused, CallsRinging: len(live.RingingSince),
		RingingSince: live.RingingSince, CallsQueued: live.Waiting})
	if n == 0 {
		return 0, controller.IdleNoAgents, nil
	}
	return n, "", nil
}

// observe tells the campaign's pacer how a settled attempt went.
func (cs *Campaigns) observe(c controller.Campaign, e controller.EndedLead, o controller.Outcome, now time.Time) {
	p := cs.pacers.peek(c.ID)
	if p == nil || !agentMode(c.Mode) {
		return
	}
	call := e.Call
	if call.State == controller.CallBlocked || call.State == controller.CallCanceled {
		return // never dialled
	}
	out := pacing.Outcome{At: now}
	end := call.UpdatedAt
	if call.EndedAt != nil {
		end = *call.EndedAt
	}
	switch {
	case call.AnsweredAt != nil && o != controller.OutcomeMachine:
		out.Answered = true
		out.Abandoned = o == controller.OutcomeAbandoned
		out.Ring = call.AnsweredAt.Sub(call.CreatedAt)
		if call.AgentID != "" {
			out.Talk = time.Duration(call.Billsec) * time.Second
			out.Wrap = max(0, now.Sub(end)) // settled once the agent's wrap-up ended
		}
	default:
		out.Ring = end.Sub(call.CreatedAt)
	}
	out.Ring = max(0, out.Ring)
	p.Observe(out)
}

// Pacing returns an agent-mode campaign's pacer inputs and dial level on
// this controller, or nil.
func (cs *Campaigns) Pacing(id string) *pacing.Snapshot {
	p := cs.pacers.peek(id)
	if p == nil {
		return nil
	}
	s := p.Snapshot()
	return &s
}
