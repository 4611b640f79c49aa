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

// previewLeadColumns read a campaign lead joined with its lead, as cl and l.
const previewLeadColumns = `cl.campaign_id::text, l.id, l.list_id::text, coalesce(l.phone, ''), l.phone_sealed, l.name, l.time_zone, l.tags,
	l.fields, l.personal_sealed, cl.attempts, cl.last_outcome, cl.variant`

func scanPreviewLead(pd controller.PersonalData, row pgx.Row) (controller.PreviewLead, error) {
	var (
		p                           controller.PreviewLead
		tags, flds, sealed, details []byte
	)
	err := row.Scan(&p.CampaignID, &p.ID, &p.ListID, &p.Phone, &sealed, &p.Name, &p.TimeZone, &tags, &flds, &details,
		&p.Attempts, &p.LastOutcome, &p.Variant)
	if err != nil {
		return p, err
	}
	if p.Phone, err = openNumber(pd, p.Phone, sealed); err != nil {
		return p, err
	}
	if p.Name, flds, err = openLeadDetails(pd, p.Name, flds, details); err != nil {
		return p, err
	}
	p.Status = "preview"
	return p, decodeMaps(tags, &p.Tags, flds, &p.Fields)
}

// lockAgent reads an agent's state under its row lock. Returns ENOTFOUND.
func lockAgent(ctx context.Context, tx pgx.Tx, tenant, id string) (controller.AgentState, []string, error) {
	if _, err := uuid.Parse(id); err != nil {
		return "", nil, agentNotFound(id)
	}
	var (
		state string
		camps []string
	)
	err := tx.QueryRow(ctx, `SELECT state, campaign_ids::text[] FROM agents WHERE id = $1 AND tenant_id = $2 FOR UPDATE`,
		id, tenant).Scan(&state, &camps)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, agentNotFound(id)
	}
	return controller.AgentState(state), camps, err
}

// ReservePreviewLead offers an available agent the next due lead of the
// running preview campaigns they take calls for, reserving it for them
// (SKIP LOCKED: two agents are never offered one lead). An agent who holds
// a reservation gets it again. ok is false when no lead is due. Returns
// ENOTFOUND, ECONFLICT when the agent is not available.
func (s *Store) ReservePreviewLead(ctx context.Context, tenant, agentID string) (controller.PreviewLead, bool, error) {
	var (
		p  controller.PreviewLead
		ok bool
	)
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		state, camps, err := lockAgent(ctx, tx, tenant, agentID)
		if err != nil {
			return err
		}
		p, err = scanPreviewLead(s.pd, tx.QueryRow(ctx, `SELECT `+previewLeadColumns+`
			FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
			WHERE cl.reserved_by = $1 AND cl.status = 'preview'`, agentID))
		if err == nil {
			ok = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if state != controller.AgentAvailable {
			return controller.Errorf(controller.ECONFLICT, "agent %s is %s: only an available agent is offered leads", agentID, state)
		}
		p, err = scanPreviewLead(s.pd, tx.QueryRow(ctx, `
			WITH pick AS (
				SELECT cl.campaign_id, cl.lead_id FROM campaign_leads cl JOIN campaigns c ON c.id = cl.campaign_id
				WHERE c.tenant_id = $2 AND c.state = 'running' AND c.settings->>'mode' = 'preview'
					AND (cardinality($3::uuid[]) = 0 OR c.id = ANY($3::uuid[]))
					AND cl.status = 'pending' AND cl.accepted_by IS NULL AND cl.next_at <= now()
				ORDER BY cl.next_at, cl.lead_id LIMIT 1 FOR UPDATE OF cl SKIP LOCKED
			), cl AS (
				UPDATE campaign_leads cl SET status = 'preview', reserved_by = $1, reserved_at = now()
				FROM pick WHERE cl.campaign_id = pick.campaign_id AND cl.lead_id = pick.lead_id
				RETURNING cl.*
			)
			SELECT `+previewLeadColumns+` FROM cl JOIN leads l ON l.id = cl.lead_id`, agentID, tenant, camps))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		ok = err == nil
		return err
	})
	if err != nil {
		return p, false, fmt.Errorf("offering agent %s a lead: %w", agentID, translate(err))
	}
	return p, ok, nil
}

// AcceptPreviewLead dials the lead reserved for an agent: the lead is
// pending again, first in line and accepted by the agent, who is on_call
// (with no call yet) until the call is answered and connected to them, or
// ends without an answer. Returns ENOTFOUND, ECONFLICT when the agent
// holds no reservation.
func (s *Store) AcceptPreviewLead(ctx context.Context, tenant, agentID string) (controller.PreviewLead, error) {
	var p controller.PreviewLead
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, _, err := lockAgent(ctx, tx, tenant, agentID); err != nil {
			return err
		}
		var err error
		p, err = scanPreviewLead(s.pd, tx.QueryRow(ctx, `
			WITH cl AS (
				UPDATE campaign_leads SET status = 'pending', next_at = '-infinity', accepted_by = $1,
					reserved_by = NULL, reserved_at = NULL
				WHERE reserved_by = $1 AND status = 'preview'
				RETURNING *
			)
			SELECT `+previewLeadColumns+` FROM cl JOIN leads l ON l.id = cl.lead_id`, agentID))
		if errors.Is(err, pgx.ErrNoRows) {
			return controller.Errorf(controller.ECONFLICT, "agent %s has no lead on offer", agentID)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE agents SET `+agentMove+`, call_id = NULL WHERE id = $2`,
			string(controller.AgentOnCall), agentID)
		return err
	})
	if err != nil {
		return p, fmt.Errorf("accepting agent %s's lead: %w", agentID, translate(err))
	}
	return p, nil
}

// SkipPreviewLead gives back the lead reserved for an agent, due again
// after delay (a skip is not an attempt). Returns ENOTFOUND, ECONFLICT
// when the agent holds no reservation.
func (s *Store) SkipPreviewLead(ctx context.Context, tenant, agentID string, delay time.Duration) error {
	if _, err := s.GetAgent(ctx, tenant, agentID); err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE campaign_leads SET status = 'pending', reserved_by = NULL,
			reserved_at = NULL, next_at = now() + $2 * interval '1 microsecond'
		WHERE reserved_by = $1 AND status = 'preview'`, agentID, delay.Microseconds())
	if err != nil {
		return fmt.Errorf("skipping agent %s's lead: %w", agentID, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return controller.Errorf(controller.ECONFLICT, "agent %s has no lead on offer", agentID)
	}
	return nil
}

// AssignAcceptedAgent connects an answered call to the agent who accepted
// its lead in preview, if any: the agent's call becomes this one.
func (s *Store) AssignAcceptedAgent(ctx context.Context, call controller.Call) (controller.AgentClaim, bool, error) {
	var c controller.AgentClaim
	if call.CampaignID == "" || call.LeadID == 0 {
		return c, false, nil
	}
	err := s.db.pool.QueryRow(ctx, `
		WITH a AS (
			UPDATE agents a SET call_id = $1
			FROM campaign_leads cl
			WHERE cl.campaign_id = $2 AND cl.lead_id = $3 AND cl.accepted_by = a.id
				AND a.state = 'on_call' AND a.call_id IS NULL
			RETURNING a.id, a.endpoint
		), c AS (
			UPDATE calls SET agent_id = a.id::text FROM a WHERE calls.id = $1
		)
		SELECT id::text, endpoint FROM a`, call.ID, call.CampaignID, call.LeadID).Scan(&c.AgentID, &c.Endpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("connecting call %s to its preview agent: %w", call.ID, translate(err))
	}
	return c, true, nil
}

// ReleaseAgents frees agents nothing will free otherwise: an agent on a
// call that has ended (its flow never reported the bridge's end: a crash)
// goes to wrap-up if the call was answered, else back to available; an
// agent who accepted a preview lead that is no longer waiting to be dialled
// or dialling (settled, withdrawn) is available again; and offers older
// than offerTTL go back to pending. Returns how many rows changed.
func (s *Store) ReleaseAgents(ctx context.Context, offerTTL time.Duration) (int, error) {
	n := 0
	b := &pgx.Batch{}
	ended := `SELECT id FROM calls WHERE state IN ('completed', 'failed', 'canceled', 'blocked')`
	b.Queue(`UPDATE agents SET `+agentMove+`
		WHERE state = 'on_call' AND call_id IN (`+ended+` AND answered_at IS NOT NULL)`, string(controller.AgentWrapUp))
	b.Queue(`UPDATE agents SET `+agentMove+`, call_id = NULL
		WHERE state = 'on_call' AND call_id IN (`+ended+` AND answered_at IS NULL)`, string(controller.AgentAvailable))
	b.Queue(`UPDATE agents SET `+agentMove+`
		WHERE state = 'on_call' AND call_id IS NULL AND NOT EXISTS (
			SELECT 1 FROM campaign_leads cl WHERE cl.accepted_by = agents.id AND cl.status IN ('pending', 'dialling'))`,
		string(controller.AgentAvailable))
	b.Queue(`UPDATE campaign_leads SET status = 'pending', reserved_by = NULL, reserved_at = NULL
		WHERE status = 'preview' AND reserved_at < now() - $1 * interval '1 microsecond'`, offerTTL.Microseconds())
	br := s.db.pool.SendBatch(ctx, b)
	for range 4 {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return n, fmt.Errorf("releasing agents: %w", translate(err))
		}
		n += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return n, fmt.Errorf("releasing agents: %w", translate(err))
	}
	return n, nil
}
