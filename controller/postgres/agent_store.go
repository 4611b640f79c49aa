package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.AgentStore = (*Store)(nil)

const agentColumns = `id::text, tenant_id, name, endpoint, skills, campaign_ids::text[], wrap_seconds, state,
	state_since, coalesce(call_id::text, ''), created_at, calls, on_call_seconds::int, wrap_up_seconds::int,
	logged_in_seconds::int`

func scanAgent(row pgx.Row) (controller.Agent, error) {
	var a controller.Agent
	err := row.Scan(&a.ID, &a.TenantID, &a.Name, &a.Endpoint, &a.Skills, &a.CampaignIDs, &a.WrapSeconds,
		&a.State, &a.StateSince, &a.CallID, &a.CreatedAt, &a.Calls, &a.OnCallSeconds, &a.WrapUpSeconds,
		&a.LoggedInSeconds)
	return a, err
}

// agentMove is the SET list of a state change to the state in parameter
// $1: the time spent in the state left is added to the totals, and a call
// taken is counted. (In an UPDATE the right-hand sides read the old row.)
const agentMove = `state = $1, state_since = now(),
	calls = calls + CASE WHEN $1 = 'on_call' THEN 1 ELSE 0 END,
	on_call_seconds = on_call_seconds + CASE WHEN state = 'on_call'
		THEN extract(epoch FROM now() - state_since) ELSE 0 END,
	wrap_up_seconds = wrap_up_seconds + CASE WHEN state = 'wrap_up'
		THEN extract(epoch FROM now() - state_since) ELSE 0 END,
	logged_in_seconds = logged_in_seconds + CASE WHEN state <> 'offline'
		THEN extract(epoch FROM now() - state_since) ELSE 0 END`

func agentNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "agent %s not found", id)
}

// CreateAgent stores a new, offline agent with a new ID. Returns EINVALID
// naming tenant_id for an unknown tenant.
func (s *Store) CreateAgent(ctx context.Context, a controller.Agent) (controller.Agent, error) {
	skills, camps := a.Skills, a.CampaignIDs
	if skills == nil {
		skills = []string{}
	}
	if camps == nil {
		camps = []string{}
	}
	out, err := scanAgent(s.db.pool.QueryRow(ctx, `
		INSERT INTO agents (id, tenant_id, name, endpoint, skills, campaign_ids, wrap_seconds)
		VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7) RETURNING `+agentColumns,
		uuid.NewString(), a.TenantID, a.Name, a.Endpoint, skills, camps, a.WrapSeconds))
	if err != nil {
		if controller.ErrorCode(translate(err)) == controller.ENOTFOUND {
			return a, controller.FieldError("tenant_id", "unknown tenant %q", a.TenantID)
		}
		return a, fmt.Errorf("creating agent: %w", translate(err))
	}
	return out, nil
}

// ListAgents returns a tenant's agents by name.
func (s *Store) ListAgents(ctx context.Context, tenant string) ([]controller.Agent, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+agentColumns+` FROM agents WHERE tenant_id = $1 ORDER BY name, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing agents: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (controller.Agent, error) { return scanAgent(r) })
	if err != nil {
		return nil, fmt.Errorf("listing agents: %w", translate(err))
	}
	return out, nil
}

// GetAgent returns ENOTFOUND if the tenant has no such agent.
func (s *Store) GetAgent(ctx context.Context, tenant, id string) (controller.Agent, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Agent{}, agentNotFound(id)
	}
	a, err := scanAgent(s.db.pool.QueryRow(ctx, `SELECT `+agentColumns+` FROM agents
		WHERE id = $1 AND tenant_id = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, agentNotFound(id)
	}
	if err != nil {
		return a, fmt.Errorf("reading agent %s: %w", id, translate(err))
	}
	return a, nil
}

// MoveAgent changes an agent's state if it is in one of from; leaving
// wrap-up or on_call clears its call. Returns ENOTFOUND, or ECONFLICT
// naming the state it is in.
func (s *Store) MoveAgent(ctx context.Context, tenant, id string, from []controller.AgentState, to controller.AgentState) (controller.Agent, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Agent{}, agentNotFound(id)
	}
	names := make([]string, len(from))
	for i, f := range from {
		names[i] = string(f)
	}
	a, err := scanAgent(s.db.pool.QueryRow(ctx, `
		UPDATE agents SET `+agentMove+`,
			call_id = CASE WHEN $1 IN ('on_call', 'wrap_up') THEN call_id END
		WHERE id = $2 AND tenant_id = $3 AND state = ANY($4::text[])
		RETURNING `+agentColumns, string(to), id, tenant, names))
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.GetAgent(ctx, tenant, id)
		if gerr != nil {
			return cur, gerr
		}
		return cur, controller.Errorf(controller.ECONFLICT, "agent %s is %s", id, cur.State)
	}
	if err != nil {
		return a, fmt.Errorf("moving agent %s to %s: %w", id, to, translate(err))
	}
	return a, nil
}

// ClaimAgent moves the longest-waiting available agent of the tenant who
// takes calls for campaign to on_call for call (SKIP LOCKED: two calls
// never get one agent), and assigns the call to them.
func (s *Store) ClaimAgent(ctx context.Context, tenant, campaign string, call controller.CallID) (controller.AgentClaim, bool, error) {
	var c controller.AgentClaim
	err := s.db.pool.QueryRow(ctx, `
		WITH a AS (
			UPDATE agents SET `+agentMove+`, call_id = $2
			WHERE id = (
				SELECT id FROM agents
				WHERE tenant_id = $3 AND state = 'available'
					AND (cardinality(campaign_ids) = 0 OR $4::uuid = ANY(campaign_ids))
				ORDER BY state_since, id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING id, endpoint
		), c AS (
			UPDATE calls SET agent_id = a.id::text FROM a WHERE calls.id = $2
		)
		SELECT id::text, endpoint FROM a`, string(controller.AgentOnCall), call, tenant, nullUUID(campaign)).Scan(&c.AgentID, &c.Endpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("claiming an agent for call %s: %w", call, translate(err))
	}
	return c, true, nil
}

// nullUUID is s, or nil when it is empty.
func nullUUID(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// FinishAgentCall ends an agent's call: to wrap_up when it was bridged,
// to available when not. Nothing happens if the agent has moved on.
func (s *Store) FinishAgentCall(ctx context.Context, agentID string, call controller.CallID, bridged bool) error {
	to := controller.AgentWrapUp
	if !bridged {
		to = controller.AgentAvailable
	}
	_, err := s.db.pool.Exec(ctx, `UPDATE agents SET `+agentMove+`,
			call_id = CASE WHEN $1 = 'wrap_up' THEN call_id END
		WHERE id = $2 AND state = 'on_call' AND call_id = $3`, string(to), agentID, call)
	if err != nil {
		return fmt.Errorf("finishing agent %s's call: %w", agentID, translate(err))
	}
	return nil
}

// EndWrapUps makes available the agents whose wrap-up outlasted their
// wrap_seconds.
func (s *Store) EndWrapUps(ctx context.Context) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE agents SET `+agentMove+`, call_id = NULL
		WHERE state = 'wrap_up' AND state_since < now() - make_interval(secs => wrap_seconds)`,
		string(controller.AgentAvailable))
	if err != nil {
		return 0, fmt.Errorf("ending wrap-ups: %w", translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// CampaignAgents counts the agents of a tenant who take calls for a
// campaign, by state.
func (s *Store) CampaignAgents(ctx context.Context, tenant, campaign string) (controller.AgentCounts, error) {
	var k controller.AgentCounts
	err := s.db.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE state <> 'offline'), count(*) FILTER (WHERE state = 'available'),
			count(*) FILTER (WHERE state = 'on_call'), count(*) FILTER (WHERE state = 'wrap_up'),
			count(*) FILTER (WHERE state = 'paused')
		FROM agents WHERE tenant_id = $1 AND (cardinality(campaign_ids) = 0 OR $2::uuid = ANY(campaign_ids))`,
		tenant, nullUUID(campaign)).Scan(&k.LoggedIn, &k.Available, &k.OnCall, &k.WrapUp, &k.Paused)
	if err != nil {
		return k, fmt.Errorf("counting agents of campaign %s: %w", campaign, translate(err))
	}
	return k, nil
}

// CampaignLiveCalls reports a campaign's calls in progress that no agent
// has taken: ringing (not answered yet, with when each was created) and
// answered ones waiting for an agent.
func (s *Store) CampaignLiveCalls(ctx context.Context, id string) (controller.LiveCalls, error) {
	var lc controller.LiveCalls
	rows, err := s.db.pool.Query(ctx, `
		SELECT c.state = 'answered', c.created_at FROM campaign_leads cl JOIN calls c ON c.id = cl.call_id
		WHERE cl.campaign_id = $1 AND cl.status = 'dialling' AND c.agent_id IS NULL
			AND c.state IN ('queued', 'originating', 'ringing', 'early', 'answered')`, id)
	if err != nil {
		return lc, fmt.Errorf("reading live calls of campaign %s: %w", id, translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			answered bool
			at       time.Time
		)
		if err := rows.Scan(&answered, &at); err != nil {
			return lc, fmt.Errorf("reading live calls of campaign %s: %w", id, translate(err))
		}
		if answered {
			lc.Waiting++
		} else {
			lc.RingingSince = append(lc.RingingSince, at)
		}
	}
	return lc, rows.Err()
}

// CampaignAgentTime sums the busy (on a call or in wrap-up) and logged-in
// seconds of the agents who take a campaign's calls, the current state's
// time included.
func (s *Store) CampaignAgentTime(ctx context.Context, tenant, campaign string) (busy, loggedIn float64, err error) {
	err = s.db.pool.QueryRow(ctx, `
		SELECT coalesce(sum(on_call_seconds + wrap_up_seconds + CASE WHEN state IN ('on_call', 'wrap_up')
				THEN extract(epoch FROM now() - state_since) ELSE 0 END), 0),
			coalesce(sum(logged_in_seconds + CASE WHEN state <> 'offline'
				THEN extract(epoch FROM now() - state_since) ELSE 0 END), 0)
		FROM agents WHERE tenant_id = $1 AND (cardinality(campaign_ids) = 0 OR $2::uuid = ANY(campaign_ids))`,
		tenant, nullUUID(campaign)).Scan(&busy, &loggedIn)
	if err != nil {
		return 0, 0, fmt.Errorf("reading agent time of campaign %s: %w", campaign, translate(err))
	}
	return busy, loggedIn, nil
}
