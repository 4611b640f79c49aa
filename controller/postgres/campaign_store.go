package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// campaignSettings is what the settings column holds: a campaign without
// the fields that have their own columns.
type campaignSettings struct {
	Mode          controller.DialMode                         `json:"mode"`
	FlowID        string                                      `json:"flow_id,omitempty"`
	Purpose       controller.Purpose                          `json:"purpose,omitempty"`
	CallerIDs     []string                                    `json:"caller_ids"`
	CallerIDName  string                                      `json:"caller_id_name,omitempty"`
	Switch        string                                      `json:"switch,omitempty"`
	ListIDs       []string                                    `json:"list_ids"`
	Target        string                                      `json:"target,omitempty"`
	MaxConcurrent int                                         `json:"max_concurrent"`
	MaxCPS        float64                                     `json:"max_cps"`
	MaxAttempts   int                                         `json:"max_attempts"`
	Retry         map[controller.Outcome]controller.RetryRule `json:"retry,omitempty"`
	Schedule      controller.Schedule                         `json:"schedule"`
	RingSeconds   int                                         `json:"ring_seconds,omitempty"`
	// Variants are fixed once the campaign has started (UpdateCampaign).
	Variants               []controller.Variant `json:"variants,omitempty"`
	ConversionDispositions []string             `json:"conversion_dispositions,omitempty"`
}

func settingsOf(c controller.Campaign) campaignSettings {
	return campaignSettings{Mode: c.Mode, FlowID: c.FlowID, Purpose: c.Purpose, CallerIDs: c.CallerIDs,
		CallerIDName: c.CallerIDName, Switch: c.Switch, ListIDs: c.ListIDs, Target: c.Target,
		MaxConcurrent: c.MaxConcurrent, MaxCPS: c.MaxCPS, MaxAttempts: c.MaxAttempts, Retry: c.Retry,
		Schedule: c.Schedule, RingSeconds: c.RingSeconds, Variants: c.Variants,
		ConversionDispositions: c.ConversionDispositions}
}

func (st campaignSettings) apply(c *controller.Campaign) {
	c.Mode, c.FlowID, c.Purpose, c.CallerIDs = st.Mode, st.FlowID, st.Purpose, st.CallerIDs
	c.CallerIDName, c.Switch, c.ListIDs, c.Target = st.CallerIDName, st.Switch, st.ListIDs, st.Target
	c.MaxConcurrent, c.MaxCPS, c.MaxAttempts, c.Retry = st.MaxConcurrent, st.MaxCPS, st.MaxAttempts, st.Retry
	c.Schedule, c.RingSeconds = st.Schedule, st.RingSeconds
	c.Variants, c.ConversionDispositions = st.Variants, st.ConversionDispositions
}

const campaignColumns = `id::text, tenant_id, name, state, settings, created_at, updated_at, started_at, ended_at`

func scanCampaign(row pgx.Row) (controller.Campaign, error) {
	var (
		c   controller.Campaign
		raw []byte
		st  campaignSettings
	)
	if err := row.Scan(&c.ID, &c.TenantID, &c.Name, &c.State, &raw, &c.CreatedAt, &c.UpdatedAt,
		&c.StartedAt, &c.EndedAt); err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return c, fmt.Errorf("decoding settings of campaign %s: %w", c.ID, err)
	}
	st.apply(&c)
	return c, nil
}

func campaignNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "campaign %s not found", id)
}

// CreateCampaign stores c as a draft with a new ID. Returns EINVALID naming
// tenant_id for an unknown tenant.
func (s *Store) CreateCampaign(ctx context.Context, c controller.Campaign) (controller.Campaign, error) {
	raw, err := json.Marshal(settingsOf(c))
	if err != nil {
		return c, fmt.Errorf("encoding campaign: %w", err)
	}
	out, err := scanCampaign(s.db.pool.QueryRow(ctx, `
		INSERT INTO campaigns (id, tenant_id, name, settings) VALUES ($1, $2, $3, $4)
		RETURNING `+campaignColumns, uuid.NewString(), c.TenantID, c.Name, raw))
	if err != nil {
		if controller.ErrorCode(translate(err)) == controller.ENOTFOUND {
			return c, controller.FieldError("tenant_id", "unknown tenant %q", c.TenantID)
		}
		return c, fmt.Errorf("creating campaign: %w", translate(err))
	}
	return out, nil
}

// UpdateCampaign replaces the name and settings of a draft or paused
// campaign. Returns ENOTFOUND, or ECONFLICT when it is in another state or
// the update changes the variants of a campaign that has started (its
// leads are split already).
func (s *Store) UpdateCampaign(ctx context.Context, c controller.Campaign) (controller.Campaign, error) {
	if _, err := uuid.Parse(c.ID); err != nil {
		return c, campaignNotFound(c.ID)
	}
	raw, err := json.Marshal(settingsOf(c))
	if err != nil {
		return c, fmt.Errorf("encoding campaign: %w", err)
	}
	out, err := scanCampaign(s.db.pool.QueryRow(ctx, `
		UPDATE campaigns SET name = $3, settings = $4, updated_at = now()
		WHERE id = $1 AND tenant_id = $2 AND state IN ('draft', 'paused')
			AND (started_at IS NULL
				OR coalesce(settings->'variants', '[]') = coalesce($4::jsonb->'variants', '[]'))
		RETURNING `+campaignColumns, c.ID, c.TenantID, c.Name, raw))
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.GetCampaign(ctx, c.TenantID, c.ID)
		if gerr != nil {
			return c, gerr
		}
		if cur.State == controller.CampaignDraft || cur.State == controller.CampaignPaused {
			return c, &controller.Error{Code: controller.ECONFLICT, Field: "variants",
				Message: fmt.Sprintf("campaign %s has started: its variants cannot change, its leads are split between them", c.ID)}
		}
		return c, controller.Errorf(controller.ECONFLICT, "campaign %s is %s: only draft or paused campaigns can be changed", c.ID, cur.State)
	}
	if err != nil {
		return c, fmt.Errorf("updating campaign %s: %w", c.ID, translate(err))
	}
	return out, nil
}

// GetCampaign returns ENOTFOUND if the tenant has no such campaign.
func (s *Store) GetCampaign(ctx context.Context, tenant, id string) (controller.Campaign, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Campaign{}, campaignNotFound(id)
	}
	c, err := scanCampaign(s.db.pool.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns
		WHERE id = $1 AND tenant_id = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, campaignNotFound(id)
	}
	if err != nil {
		return c, fmt.Errorf("reading campaign %s: %w", id, translate(err))
	}
	return c, nil
}

// ListCampaigns returns a tenant's campaigns, newest first; archived ones
// only when archived is true.
func (s *Store) ListCampaigns(ctx context.Context, tenant string, archived bool) ([]controller.Campaign, error) {
	return s.queryCampaigns(ctx, `SELECT `+campaignColumns+` FROM campaigns
		WHERE tenant_id = $1 AND ($2 OR state <> 'archived') ORDER BY created_at DESC, id`, tenant, archived)
}

// RunningCampaigns returns every tenant's running campaigns.
func (s *Store) RunningCampaigns(ctx context.Context) ([]controller.Campaign, error) {
	return s.queryCampaigns(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE state = 'running' ORDER BY id`)
}

// SettlingCampaigns returns the paused and stopped campaigns that still
// have leads dialling (a partial index keeps it cheap however many stopped
// campaigns there are).
func (s *Store) SettlingCampaigns(ctx context.Context) ([]controller.Campaign, error) {
	return s.queryCampaigns(ctx, `SELECT `+campaignColumns+` FROM campaigns
		WHERE id IN (SELECT DISTINCT campaign_id FROM campaign_leads WHERE status = 'dialling')
			AND state IN ('paused', 'stopped') ORDER BY id`)
}

func (s *Store) queryCampaigns(ctx context.Context, sql string, args ...any) ([]controller.Campaign, error) {
	rows, err := s.db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("listing campaigns: %w", translate(err))
	}
	defer rows.Close()
	out := []controller.Campaign{}
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("listing campaigns: %w", translate(err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing campaigns: %w", translate(err))
	}
	return out, nil
}

// TransitionCampaign applies t in one transaction under the campaign's row
// lock. Starting or resuming adds the leads of its lists that target
// matches (nil: all) and that it does not have yet, one per number. Pausing
// or stopping cancels its calls not yet sent to a switch and puts their
// leads back to pending, so no call of the campaign is originated after
// this returns. Returns ENOTFOUND, or ECONFLICT when t is not allowed from
// the campaign's state.
func (s *Store) TransitionCampaign(ctx context.Context, tenant, id string, t controller.CampaignTransition, target *controller.TagExpr) (controller.Campaign, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Campaign{}, campaignNotFound(id)
	}
	var out controller.Campaign
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns
			WHERE id = $1 AND tenant_id = $2 FOR UPDATE`, id, tenant))
		if errors.Is(err, pgx.ErrNoRows) {
			return campaignNotFound(id)
		}
		if err != nil {
			return err
		}
		next, ok := t.Next(c.State)
		if !ok {
			return controller.Errorf(controller.ECONFLICT, "cannot %s a campaign that is %s", t, c.State)
		}
		switch t {
		case controller.CampaignStart, controller.CampaignResume:
			if err := addCampaignLeads(ctx, tx, c, target); err != nil {
				return err
			}
		case controller.CampaignPause, controller.CampaignStop:
			if err := withdrawCampaignCalls(ctx, tx, c.ID); err != nil {
				return err
			}
		}
		out, err = scanCampaign(tx.QueryRow(ctx, `
			UPDATE campaigns SET state = $2, updated_at = now(),
				started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
				ended_at = CASE WHEN $2 = 'stopped' THEN now() ELSE ended_at END
			WHERE id = $1 RETURNING `+campaignColumns, c.ID, string(next)))
		return err
	})
	if err != nil {
		return out, fmt.Errorf("%s campaign %s: %w", t, id, translate(err))
	}
	return out, nil
}

// addCampaignLeads adds to a campaign the leads of its lists that match
// target, one per number (the oldest lead of a number wins), each in its
// variant (variantSQL).
func addCampaignLeads(ctx context.Context, tx pgx.Tx, c controller.Campaign, target *controller.TagExpr) error {
	names, bounds := make([]string, len(c.Variants)), make([]int32, len(c.Variants))
	total := int32(0)
	for i, v := range c.Variants {
		total += int32(v.Weight)
		names[i], bounds[i] = v.Name, total
	}
	args := []any{c.ID, c.TenantID, c.ListIDs, names, bounds}
	where, err := tagSQL(target, &args)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO campaign_leads (campaign_id, lead_id, phone, phone_index, phone_sealed, variant)
		SELECT DISTINCT ON (l.phone_index, l.phone) $1::uuid, l.id, l.phone, l.phone_index, l.phone_sealed,
			`+variantSQL+` FROM leads l
		WHERE l.tenant_id = $2 AND l.list_id = ANY($3::uuid[]) AND (`+where+`)
		ORDER BY l.phone_index, l.phone, l.id
		ON CONFLICT DO NOTHING`, args...)
	return err
}

// variantSQL is controller.VariantOf for lead l of campaign $1, with the
// variants' names $4 and their cumulative weights $5: the first 32 bits of
// MD5("<campaign>:<lead>") modulo the total weight pick the first variant
// whose cumulative weight is above them; empty without variants.
const variantSQL = `CASE WHEN cardinality($4::text[]) = 0 THEN '' ELSE (
	SELECT v.name FROM unnest($4::text[], $5::int[]) AS v(name, bound)
	WHERE v.bound > ('x' || left(md5($1::uuid::text || ':' || l.id::text), 8))::bit(32)::bigint
		% ($5::int[])[cardinality($5::int[])]
	ORDER BY v.bound LIMIT 1) END`

// tagSQL compiles a targeting expression over leads l into SQL, appending
// its values to args as parameters.
func tagSQL(e *controller.TagExpr, args *[]any) (string, error) {
	if e == nil {
		return "true", nil
	}
	param := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	switch e.Op {
	case "and", "or":
		if len(e.Args) == 0 {
			return "", controller.FieldError("target", "empty %s", e.Op)
		}
		parts := make([]string, len(e.Args))
		for i := range e.Args {
			p, err := tagSQL(&e.Args[i], args)
			if err != nil {
				return "", err
			}
			parts[i] = "(" + p + ")"
		}
		return strings.Join(parts, " "+strings.ToUpper(e.Op)+" "), nil
	case "not":
		if len(e.Args) != 1 {
			return "", controller.FieldError("target", "not takes one operand")
		}
		p, err := tagSQL(&e.Args[0], args)
		return "NOT (" + p + ")", err
	case "eq":
		return "l.tags->>" + param(e.Key) + "::text = " + param(e.Value) + "::text", nil
	case "ne":
		return "l.tags->>" + param(e.Key) + "::text IS DISTINCT FROM " + param(e.Value) + "::text", nil
	case "in":
		return "l.tags->>" + param(e.Key) + "::text = ANY(" + param(e.Values) + "::text[])", nil
	case "has":
		return "l.tags ? " + param(e.Key) + "::text", nil
	}
	return "", controller.FieldError("target", "unknown operator %q", e.Op)
}

// withdrawCampaignCalls cancels a campaign's calls that are still queued
// (including those a switch owner has claimed but not yet marked
// originating: marking checks the state under the row lock) and puts their
// leads back to pending, due now.
func withdrawCampaignCalls(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, `
		WITH c AS (
			UPDATE calls SET state = 'canceled', updated_at = now(), ended_at = now()
			FROM campaign_leads cl
			WHERE cl.campaign_id = $1 AND cl.status = 'dialling' AND calls.id = cl.call_id
				AND calls.state = 'queued'
			RETURNING calls.id, calls.lead_id
		), a AS (
			UPDATE attempts SET status = 'canceled', release_reason = 'campaign paused'
			FROM c WHERE attempts.call_id = c.id AND attempts.status IN ('queued', 'claimed')
		)
		UPDATE campaign_leads cl SET status = 'pending', next_at = now()
		FROM c WHERE cl.campaign_id = $1 AND cl.lead_id = c.lead_id`, id)
	return err
}
