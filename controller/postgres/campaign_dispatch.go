package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// DispatchLeads queues calls for up to max due, pending leads of a running
// campaign, in one transaction under the campaign's row lock, so that
// controllers dispatching the same campaign take turns and its limits hold
// exactly across them: no more leads dialling than MaxConcurrent, and no
// more calls created in any window of a second (1/MaxCPS seconds when
// MaxCPS is below 1) than MaxCPS allows in it. Each lead's call and attempt
// are written with the lead's move to dialling: a crash leaves both or
// neither. The calls are queued like API calls, with no decision yet: the
// owners' dial-time check is their gate. route, when not nil, routes each
// call (switch and trunk) in the same transaction, unless the campaign
// names its switch: that explicit choice wins. route must not block: it
// runs under the campaign's lock.
func (s *Store) DispatchLeads(ctx context.Context, id string, max int, route controller.RouteFunc) (controller.CampaignDispatch, error) {
	var d controller.CampaignDispatch
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var (
			tenant, state string
			raw           []byte
			callerNext    int64
		)
		err := tx.QueryRow(ctx, `SELECT tenant_id, state, settings, caller_id_next
			FROM campaigns WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&tenant, &state, &raw, &callerNext)
		if errors.Is(err, pgx.ErrNoRows) {
			return campaignNotFound(id)
		}
		if err != nil {
			return err
		}
		if state != string(controller.CampaignRunning) {
			return nil
		}
		d.Running = true
		var st campaignSettings
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("decoding settings: %w", err)
		}
		window, perWindow := rateWindow(st.MaxCPS)
		var recent int
		if err := tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND status = 'dialling'),
				(SELECT count(*) FROM calls WHERE campaign_id = $1 AND created_at > now() - $2::interval)`,
			id, window).Scan(&d.Dialling, &recent); err != nil {
			return err
		}
		d.Budget = perWindow - recent
		n := min(max, d.Budget, st.MaxConcurrent-d.Dialling)
		if n > 0 {
			names, flows := make([]string, len(st.Variants)), make([]string, len(st.Variants))
			for i, v := range st.Variants {
				names[i], flows[i] = v.Name, v.FlowID
			}
			err = tx.QueryRow(ctx, dispatchSQL, id, n, tenant, st.Switch, st.CallerIDs, callerNext,
				st.CallerIDName, st.RingSeconds*1000, string(st.Purpose), st.FlowID, names, flows,
				st.Mode == controller.ModePreview).Scan(&d.Created)
			if err != nil {
				return err
			}
			if route != nil && st.Switch == "" && d.Created > 0 {
				if err := routeDispatched(ctx, tx, s.pd, id, route); err != nil {
					return fmt.Errorf("routing: %w", err)
				}
			}
		}
		if d.Created == 0 {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaign_leads
				WHERE campaign_id = $1 AND status = 'pending' AND next_at <= now())`, id).Scan(&d.Due); err != nil {
				return err
			}
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE campaigns SET caller_id_next = caller_id_next + $2 WHERE id = $1`, id, d.Created)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("dispatching campaign %s: %w", id, translate(err))
	}
	return d, nil
}

// rateWindow returns the sliding window a calls-per-second limit is counted
// over and the calls allowed in it: a second and floor(cps) (at least 1),
// or 1/cps seconds and 1 below one call a second.
func rateWindow(cps float64) (time.Duration, int) {
	if cps >= 1 {
		return time.Second, int(math.Floor(cps))
	}
	return time.Duration(float64(time.Second) / cps), 1
}

// dispatchSQL claims up to $2 due pending leads of campaign $1 (SKIP
// LOCKED), queues a call and an attempt for each, presenting the caller IDs
// $5 in turn from $6, and moves the leads to dialling. A lead's call runs
// its variant's flow (variants $11, flows $12), else the campaign's ($10),
// and records the variant. It returns how many.
const dispatchSQL = `
WITH l AS (
	SELECT lead_id, phone, phone_index, phone_sealed, variant FROM campaign_leads
	WHERE campaign_id = $1 AND status = 'pending' AND next_at <= now()
		AND (NOT $13::bool OR accepted_by IS NOT NULL) -- preview: only the leads an agent accepted
	ORDER BY next_at, lead_id LIMIT $2 FOR UPDATE SKIP LOCKED
), n AS (
	SELECT l.lead_id, l.phone, l.phone_index, l.phone_sealed, l.variant, ld.time_zone, gen_random_uuid() AS call_id,
		nextval('attempts_id_seq') AS attempt_id, row_number() OVER (ORDER BY l.lead_id) AS rn
	FROM l JOIN leads ld ON ld.id = l.lead_id
), c AS (
	INSERT INTO calls (id, tenant_id, attempt_id, switch, to_number, to_index, to_sealed, from_number, caller_id_name,
		timeout_ms, state, purpose, flow_id, campaign_id, lead_id, variant, callee_zone)
	SELECT n.call_id, $3::text, n.attempt_id, $4::text, n.phone, n.phone_index, n.phone_sealed,
		coalesce(($5::text[])[1 + (($6::bigint + n.rn - 1) % greatest(cardinality($5::text[]), 1))], ''),
		$7::text, $8::int, 'queued', $9::text,
		nullif(coalesce((SELECT v.flow FROM unnest($11::text[], $12::text[]) AS v(name, flow)
			WHERE v.name = n.variant), $10::text), ''),
		$1::uuid, n.lead_id, nullif(n.variant, ''), n.time_zone
	FROM n
	RETURNING id, attempt_id, created_at
), a AS (
	INSERT INTO attempts (id, tenant_id, call_id, status, switch, not_before, created_at)
	SELECT c.attempt_id, $3::text, c.id, 'queued', nullif($4::text, ''), c.created_at, c.created_at FROM c
), u AS (
	UPDATE campaign_leads cl SET status = 'dialling', call_id = n.call_id
	FROM n WHERE cl.campaign_id = $1 AND cl.lead_id = n.lead_id
)
SELECT count(*) FROM n`

// SettleLeads finds up to max dialling leads of a campaign whose calls have
// ended, asks settle what becomes of each and writes it, in one
// transaction holding those leads (SKIP LOCKED: controllers settling the
// same campaign share the work). It derives everything from the stored
// calls, so running it again after a crash finds the same leads. Returns
// how many it settled.
func (s *Store) SettleLeads(ctx context.Context, id string, max int, settle func(controller.EndedLead) controller.LeadSettlement) (int, error) {
	n := 0
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT `+callColumns+`, cl.lead_id, cl.attempts, cl.outcomes, coalesce(a.blocked_reasons, '{}')
			FROM campaign_leads cl JOIN calls c ON c.id = cl.call_id
			LEFT JOIN attempts a ON a.call_id = c.id
			WHERE cl.campaign_id = $1 AND cl.status = 'dialling'
				AND c.state IN ('completed', 'failed', 'canceled', 'blocked')
				-- an agent's wrap-up gives the call its disposition: wait for it
				AND NOT EXISTS (SELECT 1 FROM agents g WHERE g.call_id = c.id
					AND g.state IN ('on_call', 'wrap_up'))
			ORDER BY cl.lead_id LIMIT $2 FOR UPDATE OF cl SKIP LOCKED`, id, max)
		if err != nil {
			return err
		}
		var ended []controller.EndedLead
		for rows.Next() {
			var (
				e   controller.EndedLead
				raw []byte
			)
			c, err := s.scanCall(rows, &e.LeadID, &e.Attempts, &raw, &e.Reasons)
			if err != nil {
				rows.Close()
				return err
			}
			if err := json.Unmarshal(raw, &e.Outcomes); err != nil {
				rows.Close()
				return fmt.Errorf("decoding outcomes of lead %d: %w", e.LeadID, err)
			}
			e.Call = c
			ended = append(ended, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ended) == 0 {
			return nil
		}
		var (
			leads                     []int64
			adds                      []int32
			statuses, outcomes, disps []string
			perOutcome                []string
			nexts                     []time.Time
		)
		for _, e := range ended {
			r := settle(e)
			oc := e.Outcomes
			if oc == nil {
				oc = map[controller.Outcome]int{}
			}
			add := int32(0)
			if r.Counted {
				oc[r.Outcome]++
				add = 1
			}
			raw, err := json.Marshal(oc)
			if err != nil {
				return err
			}
			status, next := "pending", r.NextAt
			if r.Done {
				status, next = "done", time.Time{}
			}
			leads = append(leads, e.LeadID)
			statuses = append(statuses, status)
			outcomes = append(outcomes, string(r.Outcome))
			disps = append(disps, r.Disposition)
			adds, perOutcome = append(adds, add), append(perOutcome, string(raw))
			nexts = append(nexts, next)
		}
		tag, err := tx.Exec(ctx, `
			UPDATE campaign_leads cl SET status = u.status, last_outcome = u.outcome, accepted_by = NULL,
				disposition = CASE WHEN u.status = 'done' THEN u.disposition ELSE cl.disposition END,
				attempts = cl.attempts + u.add, outcomes = u.per_outcome,
				next_at = CASE WHEN u.status = 'pending' THEN u.next_at ELSE cl.next_at END
			FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::jsonb[],
				$8::timestamptz[]) AS u(lead_id, status, outcome, disposition, add, per_outcome, next_at)
			WHERE cl.campaign_id = $1 AND cl.lead_id = u.lead_id`,
			id, leads, statuses, outcomes, disps, adds, perOutcome, nexts)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("settling leads of campaign %s: %w", id, translate(err))
	}
	return n, nil
}
