package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// Policy is one version of a compliance policy: its rules as JSON, which the
// compliance package reads.
type Policy = controller.PolicyRecord

const policyColumns = `p.id, p.version, coalesce(p.tenant_id, ''), p.name, p.body, p.created_at`

func scanPolicy(row pgx.Row) (Policy, error) {
	var p Policy
	err := row.Scan(&p.ID, &p.Version, &p.TenantID, &p.Name, &p.Body, &p.CreatedAt)
	return p, err
}

func policyNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "policy %q not found", id)
}

// PutPolicy saves body as the next version of policy id (1 for a new id) and
// returns that version; earlier versions are kept. An empty tenant saves a
// preset every tenant may use. Returns EINVALID naming the field for a
// missing or unprintable id, text that cannot be stored, a body that is not
// a JSON object, or an unknown tenant; ECONFLICT if the id belongs to
// another tenant.
func (s *Store) PutPolicy(ctx context.Context, tenant, id, name string, body json.RawMessage) (int, error) {
	if id == "" || len(id) > 200 || controller.CheckText("id", id) != nil {
		return 0, fmt.Errorf("saving policy: %w",
			controller.FieldError("id", "must be 1 to 200 printable characters, without quotes or brackets"))
	}
	if err := checkStoredText("name", name); err != nil {
		return 0, fmt.Errorf("saving policy: %w", err)
	}
	if err := checkStoredText("tenant_id", tenant); err != nil {
		return 0, fmt.Errorf("saving policy: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return 0, fmt.Errorf("saving policy: %w", controller.FieldError("body", "must be a JSON object"))
	}
	for range 5 { // concurrent saves of one id race for the next version
		var version int
		// Saves of one id take turns on an advisory lock, so each reads the
		// latest version committed before it (READ COMMITTED, new snapshot
		// per statement) and never collides.
		err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('callgate policy ' || current_schema() || ' ' || $1::text, 0))`, id); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `
				INSERT INTO policies (id, version, tenant_id, name, body)
				SELECT $1, coalesce(max(version), 0) + 1, nullif($2, ''), $3, $4
				FROM policies WHERE id = $1
				HAVING coalesce(bool_and(tenant_id IS NOT DISTINCT FROM nullif($2, '')), true)
				RETURNING version`, id, tenant, name, []byte(body)).Scan(&version)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("saving policy: %w",
				controller.Errorf(controller.ECONFLICT, "policy id %q belongs to another tenant", id))
		}
		if err == nil {
			return version, nil
		}
		err = translate(err)
		switch controller.ErrorCode(err) {
		case controller.ECONFLICT:
			continue
		case controller.ENOTFOUND:
			return 0, fmt.Errorf("saving policy: %w", controller.FieldError("tenant_id", "unknown tenant %q", tenant))
		}
		return 0, fmt.Errorf("saving policy %s: %w", id, err)
	}
	return 0, fmt.Errorf("saving policy: %w",
		controller.Errorf(controller.ECONFLICT, "policy %q is being saved concurrently, try again", id))
}

// GetPolicy returns a version of a policy the tenant can see (its own or a
// preset); version 0 is the latest. Returns ENOTFOUND otherwise.
func (s *Store) GetPolicy(ctx context.Context, tenant, id string, version int) (Policy, error) {
	p, err := scanPolicy(s.db.pool.QueryRow(ctx, `SELECT `+policyColumns+` FROM policies p
		WHERE p.id = $1 AND (p.tenant_id = $2 OR p.tenant_id IS NULL) AND ($3 = 0 OR p.version = $3)
		ORDER BY p.version DESC LIMIT 1`, id, tenant, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, policyNotFound(id)
	}
	if err != nil {
		return p, fmt.Errorf("getting policy %s: %w", id, translate(err))
	}
	return p, nil
}

// ListPolicies returns the latest version of every policy the tenant can
// see — its own and the presets — ordered by ID.
func (s *Store) ListPolicies(ctx context.Context, tenant string) ([]Policy, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT DISTINCT ON (p.id) `+policyColumns+` FROM policies p
		WHERE p.tenant_id = $1 OR p.tenant_id IS NULL
		ORDER BY p.id, p.version DESC`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing policies: %w", translate(err))
	}
	policies, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Policy, error) { return scanPolicy(row) })
	if err != nil {
		return nil, fmt.Errorf("listing policies: %w", translate(err))
	}
	if policies == nil {
		policies = []Policy{}
	}
	return policies, nil
}

// AssignPolicy makes policy policyID (its latest version, whenever it is
// read) govern a campaign of the tenant, or with an empty campaign every
// campaign of the tenant without one of its own. Returns ENOTFOUND if the
// tenant cannot see the policy, EINVALID for text that cannot be stored.
func (s *Store) AssignPolicy(ctx context.Context, tenant, campaign, policyID string) error {
	if err := checkStoredText("campaign_id", campaign); err != nil {
		return fmt.Errorf("assigning policy: %w", err)
	}
	tag, err := s.db.pool.Exec(ctx, `
		INSERT INTO policy_assignments (tenant_id, campaign_id, policy_id)
		SELECT $1, $2, $3
		WHERE EXISTS (SELECT 1 FROM policies WHERE id = $3 AND (tenant_id = $1 OR tenant_id IS NULL))
		ON CONFLICT (tenant_id, campaign_id) DO UPDATE
		SET policy_id = excluded.policy_id, assigned_at = now()`, tenant, campaign, policyID)
	if err != nil {
		return fmt.Errorf("assigning policy %s: %w", policyID, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("assigning policy: %w", policyNotFound(policyID))
	}
	return nil
}

// PolicyFor returns the latest version of the policy governing a campaign of
// the tenant: the campaign's own assignment, else the tenant's default.
// Returns ENOTFOUND if neither exists.
func (s *Store) PolicyFor(ctx context.Context, tenant, campaign string) (Policy, error) {
	p, err := scanPolicy(s.db.pool.QueryRow(ctx, `
		SELECT `+policyColumns+`
		FROM policy_assignments a
		CROSS JOIN LATERAL (
			SELECT * FROM policies p WHERE p.id = a.policy_id ORDER BY p.version DESC LIMIT 1
		) p
		WHERE a.tenant_id = $1 AND a.campaign_id IN ($2, '')
		ORDER BY a.campaign_id = '' LIMIT 1`, tenant, campaign))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("finding the policy of campaign %q: %w", campaign,
			controller.Errorf(controller.ENOTFOUND, "no policy is assigned to the campaign or the tenant"))
	}
	if err != nil {
		return p, fmt.Errorf("finding the policy of campaign %q: %w", campaign, translate(err))
	}
	return p, nil
}

// DeletePolicy removes every version of a policy the tenant owns. Returns
// ENOTFOUND if the tenant owns no such policy and ECONFLICT while it is
// assigned (unassign it first: calls must never be judged by a policy that
// vanished). Decisions already stored keep the policy's id and version.
func (s *Store) DeletePolicy(ctx context.Context, tenant, id string) error {
	var deleted, assigned int
	err := s.db.pool.QueryRow(ctx, `
		WITH a AS (
			SELECT count(*) AS n FROM policy_assignments WHERE tenant_id = $1 AND policy_id = $2
		), d AS (
			DELETE FROM policies p USING a
			WHERE p.id = $2 AND p.tenant_id = $1 AND a.n = 0
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM d), (SELECT n FROM a)`, tenant, id).Scan(&deleted, &assigned)
	if err != nil {
		return fmt.Errorf("deleting policy %s: %w", id, translate(err))
	}
	if assigned > 0 {
		return fmt.Errorf("deleting policy %s: %w", id,
			controller.Errorf(controller.ECONFLICT, "policy %q is assigned; assign another policy first", id))
	}
	if deleted == 0 {
		return fmt.Errorf("deleting policy: %w", policyNotFound(id))
	}
	return nil
}
