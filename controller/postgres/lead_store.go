package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// CampaignCounters counts a campaign's leads by status, its attempts and
// the last outcomes of its done leads.
func (s *Store) CampaignCounters(ctx context.Context, id string) (controller.CampaignCounters, error) {
	k := controller.CampaignCounters{Outcomes: map[controller.Outcome]int{}}
	rows, err := s.db.pool.Query(ctx, `
		SELECT status, last_outcome, count(*), sum(attempts),
			count(*) FILTER (WHERE status = 'pending' AND next_at <= now()),
			min(next_at) FILTER (WHERE status = 'pending' AND next_at > now())
		FROM campaign_leads WHERE campaign_id = $1 GROUP BY status, last_outcome`, id)
	if err != nil {
		return k, fmt.Errorf("counting campaign %s: %w", id, translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status, outcome string
			n, attempts     int
			due             int
			next            *time.Time
		)
		if err := rows.Scan(&status, &outcome, &n, &attempts, &due, &next); err != nil {
			return k, fmt.Errorf("counting campaign %s: %w", id, translate(err))
		}
		k.Leads += n
		k.Attempts += attempts
		k.Due += due
		switch status {
		case "pending":
			k.Pending += n
		case "dialling":
			k.Dialling += n
		case "done":
			k.Done += n
			k.Outcomes[controller.Outcome(outcome)] += n
		}
		if next != nil && (k.NextDueAt == nil || next.Before(*k.NextDueAt)) {
			k.NextDueAt = next
		}
	}
	if err := rows.Err(); err != nil {
		return k, fmt.Errorf("counting campaign %s: %w", id, translate(err))
	}
	return k, nil
}

// CampaignLeads lists a campaign's leads in lead order after the lead ID
// after, optionally only those with status.
func (s *Store) CampaignLeads(ctx context.Context, id, status string, after int64, limit int) ([]controller.CampaignLead, error) {
	rows, err := s.db.pool.Query(ctx, `
		SELECT l.id, l.list_id::text, coalesce(l.phone, ''), l.phone_sealed, l.name, l.time_zone, l.tags, l.fields, l.personal_sealed,
			cl.status, cl.attempts, CASE WHEN cl.status = 'pending' AND cl.next_at > '-infinity' THEN cl.next_at END,
			cl.last_outcome, cl.disposition, coalesce(cl.call_id::text, ''), cl.variant
		FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
		WHERE cl.campaign_id = $1 AND ($2 = '' OR cl.status = $2) AND cl.lead_id > $3
		ORDER BY cl.lead_id LIMIT $4`, id, status, after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing leads of campaign %s: %w", id, translate(err))
	}
	defer rows.Close()
	out := []controller.CampaignLead{}
	for rows.Next() {
		var (
			cl                          controller.CampaignLead
			tags, flds, sealed, details []byte
		)
		if err := rows.Scan(&cl.ID, &cl.ListID, &cl.Phone, &sealed, &cl.Name, &cl.TimeZone, &tags, &flds, &details,
			&cl.Status, &cl.Attempts, &cl.NextAt, &cl.LastOutcome, &cl.Disposition, &cl.CallID, &cl.Variant); err != nil {
			return nil, fmt.Errorf("listing leads of campaign %s: %w", id, translate(err))
		}
		var err error
		if cl.Phone, err = openNumber(s.pd, cl.Phone, sealed); err != nil {
			return nil, fmt.Errorf("listing leads of campaign %s: %w", id, err)
		}
		if cl.Name, flds, err = openLeadDetails(s.pd, cl.Name, flds, details); err != nil {
			return nil, fmt.Errorf("listing leads of campaign %s: %w", id, err)
		}
		if err := decodeMaps(tags, &cl.Tags, flds, &cl.Fields); err != nil {
			return nil, err
		}
		out = append(out, cl)
	}
	return out, rows.Err()
}

func decodeMaps(tags []byte, t *map[string]string, fields []byte, f *map[string]string) error {
	if len(tags) > 2 {
		if err := json.Unmarshal(tags, t); err != nil {
			return fmt.Errorf("decoding lead tags: %w", err)
		}
	}
	if len(fields) > 2 {
		if err := json.Unmarshal(fields, f); err != nil {
			return fmt.Errorf("decoding lead fields: %w", err)
		}
	}
	return nil
}

// LeadAttempts returns the calls a campaign placed to one lead, oldest
// first. Returns ENOTFOUND if the lead is not in the tenant's campaign.
func (s *Store) LeadAttempts(ctx context.Context, tenant, id string, lead int64) ([]controller.Call, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, campaignNotFound(id)
	}
	var ok bool
	if err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaign_leads cl
		JOIN campaigns c ON c.id = cl.campaign_id
		WHERE cl.campaign_id = $1 AND cl.lead_id = $2 AND c.tenant_id = $3)`, id, lead, tenant).Scan(&ok); err != nil {
		return nil, fmt.Errorf("reading lead %d: %w", lead, translate(err))
	}
	if !ok {
		return nil, controller.Errorf(controller.ENOTFOUND, "lead %d is not in campaign %s", lead, id)
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+callColumns+` FROM calls c
		WHERE c.campaign_id = $1 AND c.lead_id = $2 ORDER BY c.created_at, c.id`, id, lead)
	if err != nil {
		return nil, fmt.Errorf("reading attempts of lead %d: %w", lead, translate(err))
	}
	calls, err := s.collectCalls(rows)
	if err != nil {
		return nil, fmt.Errorf("reading attempts of lead %d: %w", lead, translate(err))
	}
	if calls == nil {
		calls = []controller.Call{}
	}
	return calls, nil
}

// RecycleLeads puts a campaign's done leads whose last outcome is one of
// outcomes back to pending, due now, with their attempt counts reset (their
// history stays in calls). Returns how many.
func (s *Store) RecycleLeads(ctx context.Context, id string, outcomes []controller.Outcome) (int, error) {
	names := make([]string, len(outcomes))
	for i, o := range outcomes {
		names[i] = string(o)
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE campaign_leads SET status = 'pending', next_at = now(),
		attempts = 0, outcomes = '{}', disposition = ''
		WHERE campaign_id = $1 AND status = 'done' AND last_outcome = ANY($2::text[])`, id, names)
	if err != nil {
		return 0, fmt.Errorf("recycling leads of campaign %s: %w", id, translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// CreateLeadList creates an empty list. Returns EINVALID naming tenant_id
// for an unknown tenant.
func (s *Store) CreateLeadList(ctx context.Context, tenant, name string) (controller.LeadList, error) {
	l := controller.LeadList{ID: uuid.NewString(), TenantID: tenant, Name: name}
	err := s.db.pool.QueryRow(ctx, `INSERT INTO lead_lists (id, tenant_id, name) VALUES ($1, $2, $3)
		RETURNING created_at`, l.ID, tenant, name).Scan(&l.CreatedAt)
	if err != nil {
		if controller.ErrorCode(translate(err)) == controller.ENOTFOUND {
			return l, controller.FieldError("tenant_id", "unknown tenant %q", tenant)
		}
		return l, fmt.Errorf("creating lead list: %w", translate(err))
	}
	return l, nil
}

// GetLeadList returns a list with its lead count. Returns ENOTFOUND.
func (s *Store) GetLeadList(ctx context.Context, tenant, id string) (controller.LeadList, error) {
	l := controller.LeadList{ID: id, TenantID: tenant}
	if _, err := uuid.Parse(id); err != nil {
		return l, controller.Errorf(controller.ENOTFOUND, "lead list %s not found", id)
	}
	err := s.db.pool.QueryRow(ctx, `SELECT name, created_at, (SELECT count(*) FROM leads WHERE list_id = $1)
		FROM lead_lists WHERE id = $1 AND tenant_id = $2`, id, tenant).Scan(&l.Name, &l.CreatedAt, &l.Leads)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, controller.Errorf(controller.ENOTFOUND, "lead list %s not found", id)
	}
	if err != nil {
		return l, fmt.Errorf("reading lead list %s: %w", id, translate(err))
	}
	return l, nil
}
