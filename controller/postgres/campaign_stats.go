package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// CampaignCallCounts counts a campaign's leads by variant, its calls by the
// variant they ran, and the attempts the gate blocked, by reason, all in
// one snapshot (a read-only repeatable-read transaction). A call counts as
// originated once its attempt was sent to a switch; as reached when it
// rang or was answered. conversions are the dispositions that count as a
// conversion, compared without regard to case. Variants come ordered by
// name. Returns ENOTFOUND for a malformed ID (an unknown campaign has no
// leads or calls: zero counts).
func (s *Store) CampaignCallCounts(ctx context.Context, id string, conversions []string) (controller.CampaignCallCounts, error) {
	out := controller.CampaignCallCounts{BlockedReasons: map[string]int{}}
	if _, err := uuid.Parse(id); err != nil {
		return out, campaignNotFound(id)
	}
	lowered := make([]string, len(conversions))
	for i, d := range conversions {
		lowered[i] = strings.ToLower(d)
	}
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		byVariant := map[string]*controller.VariantCallCounts{}
		get := func(name string) *controller.VariantCallCounts {
			v, ok := byVariant[name]
			if !ok {
				v = &controller.VariantCallCounts{Variant: name}
				byVariant[name] = v
			}
			return v
		}
		var (
			name string
			n    int
		)
		rows, err := tx.Query(ctx, `SELECT variant, count(*) FROM campaign_leads
			WHERE campaign_id = $1 GROUP BY variant`, id)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error {
			get(name).Leads = n
			return nil
		}); err != nil {
			return err
		}

		var k controller.VariantCallCounts
		rows, err = tx.Query(ctx, `
			SELECT coalesce(c.variant, ''), count(*),
				count(*) FILTER (WHERE c.answered_at IS NOT NULL OR EXISTS (SELECT 1 FROM call_events e
					WHERE e.call_id = c.id AND e.to_state IN ('ringing', 'early', 'answered'))),
				count(*) FILTER (WHERE c.answered_at IS NOT NULL),
				coalesce(sum(c.billsec) FILTER (WHERE c.answered_at IS NOT NULL), 0),
				count(*) FILTER (WHERE lower(c.disposition) = ANY($2::text[])),
				count(*) FILTER (WHERE c.answered_at IS NOT NULL AND lower(c.disposition) = 'abandoned')
			FROM calls c JOIN attempts a ON a.call_id = c.id
			WHERE c.campaign_id = $1 AND a.sent_at IS NOT NULL
			GROUP BY 1`, id, lowered)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&k.Variant, &k.Originated, &k.Reached, &k.Answered,
			&k.TalkSeconds, &k.Conversions, &k.Abandoned}, func() error {
			v := get(k.Variant)
			k.Leads = v.Leads
			*v = k
			return nil
		}); err != nil {
			return err
		}

		if err := tx.QueryRow(ctx, `SELECT count(*) FROM calls
			WHERE campaign_id = $1 AND state = 'blocked'`, id).Scan(&out.Blocked); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT r.reason, count(*)
			FROM calls c JOIN attempts a ON a.call_id = c.id
				CROSS JOIN LATERAL unnest(a.blocked_reasons) AS r(reason)
			WHERE c.campaign_id = $1 AND c.state = 'blocked'
			GROUP BY r.reason`, id)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error {
			out.BlockedReasons[name] = n
			return nil
		}); err != nil {
			return err
		}

		for _, name := range slices.Sorted(maps.Keys(byVariant)) {
			out.Variants = append(out.Variants, *byVariant[name])
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("counting calls of campaign %s: %w", id, translate(err))
	}
	return out, nil
}
