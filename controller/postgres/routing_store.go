package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.RoutingStore = (*Store)(nil)

// RoutingRules returns the tenant's routing rules: version 0 and none when
// they were never set.
func (s *Store) RoutingRules(ctx context.Context, tenant string) (controller.RoutingTable, error) {
	t := controller.RoutingTable{Rules: []controller.RouteRule{}}
	var raw []byte
	err := s.db.pool.QueryRow(ctx, `SELECT version, rules, updated_at FROM routing_rules WHERE tenant_id = $1`,
		tenant).Scan(&t.Version, &raw, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("reading routing rules: %w", translate(err))
	}
	if err := json.Unmarshal(raw, &t.Rules); err != nil {
		return t, fmt.Errorf("decoding routing rules version %d: %w", t.Version, err)
	}
	return t, nil
}

// RoutingVersion returns the version of the tenant's routing rules (0:
// never set) in one index lookup.
func (s *Store) RoutingVersion(ctx context.Context, tenant string) (int64, error) {
	var v int64
	err := s.db.pool.QueryRow(ctx, `SELECT coalesce((SELECT version FROM routing_rules WHERE tenant_id = $1), 0)`,
		tenant).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("reading routing rules version: %w", translate(err))
	}
	return v, nil
}

// putRoutingSQL replaces a tenant's rules and bumps the version in one
// statement; concurrent replacements queue on the row. With $3 >= 0 it
// changes nothing (and returns no row) unless the stored version is $3,
// where 0 means no rules were ever stored: a first row is inserted only
// for $3 <= 0, an existing one updated only if its version is $3.
const putRoutingSQL = `
INSERT INTO routing_rules AS r (tenant_id, version, rules, updated_at)
SELECT $1::text, 1, $2::jsonb, now()
WHERE $3::bigint <= 0 OR EXISTS (SELECT 1 FROM routing_rules WHERE tenant_id = $1::text)
ON CONFLICT (tenant_id) DO UPDATE
	SET version = r.version + 1, rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at
	WHERE $3::bigint < 0 OR r.version = $3::bigint
RETURNING version, updated_at`

// PutRoutingRules replaces the tenant's routing rules and returns them with
// their new version. With ifVersion >= 0 it replaces them only if the stored
// version is ifVersion (0: never set), else ECONFLICT. Returns EINVALID
// naming tenant_id for an unknown tenant. The rules are stored as given.
func (s *Store) PutRoutingRules(ctx context.Context, tenant string, rules []controller.RouteRule, ifVersion int64) (controller.RoutingTable, error) {
	if rules == nil {
		rules = []controller.RouteRule{}
	}
	t := controller.RoutingTable{Rules: rules}
	raw, err := json.Marshal(rules)
	if err != nil {
		return t, fmt.Errorf("saving routing rules: %w", err)
	}
	err = s.db.pool.QueryRow(ctx, putRoutingSQL, tenant, raw, ifVersion).Scan(&t.Version, &t.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return t, fmt.Errorf("saving routing rules: %w", controller.Errorf(controller.ECONFLICT,
			"the routing rules are no longer version %d: read them again", ifVersion))
	case controller.ErrorCode(translate(err)) == controller.ENOTFOUND:
		return t, fmt.Errorf("saving routing rules: %w", controller.FieldError("tenant_id", "unknown tenant %q", tenant))
	case err != nil:
		return t, fmt.Errorf("saving routing rules: %w", translate(err))
	}
	return t, nil
}

// routeDispatched routes the calls a dispatch transaction has just queued
// for campaign id (they are not visible to the owners before it commits):
// route gives each callee its switch and trunk, and the calls and their
// attempts are updated for those a rule sends somewhere other than any
// switch's default trunk. The calls are found as the rows this transaction
// wrote (xmin), so the dispatch statement itself is left as it is.
func routeDispatched(ctx context.Context, tx pgx.Tx, pd controller.PersonalData, id string, route controller.RouteFunc) error {
	rows, err := tx.Query(ctx, `
		SELECT c.id::text, coalesce(c.to_number, ''), c.to_sealed FROM campaign_leads cl JOIN calls c ON c.id = cl.call_id
		WHERE cl.campaign_id = $1 AND cl.status = 'dialling' AND c.state = 'queued'
			AND c.xmin = pg_current_xact_id()::xid`, id)
	if err != nil {
		return err
	}
	var ids, switches, trunks []string
	var (
		callID, clear string
		sealed        []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&callID, &clear, &sealed}, func() error {
		number, err := openNumber(pd, clear, sealed)
		if err != nil {
			return err
		}
		if sw, trunk := route(number); sw != "" || trunk != "" {
			ids, switches, trunks = append(ids, callID), append(switches, sw), append(trunks, trunk)
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `
		WITH r AS (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS r(id, switch, trunk)
		), c AS (
			UPDATE calls SET switch = r.switch, trunk = r.trunk FROM r WHERE calls.id = r.id
		)
		UPDATE attempts a SET switch = nullif(r.switch, '') FROM r WHERE a.call_id = r.id`, ids, switches, trunks)
	return err
}
