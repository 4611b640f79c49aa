package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.FlowStore = (*Store)(nil)

// mediaName is the form of flow IDs and prompt names (also checked by the
// tables): safe in file names and URLs, and without the dot that separates
// a prompt's name from its version.
var mediaName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func checkMediaName(field, s string) error {
	if !mediaName.MatchString(s) {
		return controller.FieldError(field,
			"must be 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit")
	}
	return nil
}

// putVersion runs insert, which adds the next version of (kind, tenant, key),
// until it succeeds. Saves of one key take turns on a transaction-scoped
// advisory lock, so each reads the newest version committed before it (READ
// COMMITTED takes a new snapshot per statement) and never collides; a unique
// violation is retried all the same. Returns the translated error of insert.
func (s *Store) putVersion(ctx context.Context, kind, tenant, key string, insert func(tx pgx.Tx) error) error {
	for range 5 {
		err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(
				'callgate ' || $1::text || ' ' || current_schema() || ' ' || $2::text || ' ' || $3::text, 0))`,
				kind, tenant, key); err != nil {
				return err
			}
			return insert(tx)
		})
		err = translate(err)
		if controller.ErrorCode(err) == controller.ECONFLICT {
			continue
		}
		return err
	}
	return controller.Errorf(controller.ECONFLICT, "%s %q is being saved concurrently, try again", kind, key)
}

const flowColumns = `tenant_id, id, version, name, body, created_at`

func scanFlow(row pgx.Row) (controller.FlowRecord, error) {
	var f controller.FlowRecord
	err := row.Scan(&f.TenantID, &f.ID, &f.Version, &f.Name, &f.Body, &f.CreatedAt)
	return f, err
}

func flowNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "flow %q not found", id)
}

// PutFlow stores f as the next version of flow f.ID (1 for a new ID) and
// returns it as stored: with its tenant (the default one if empty), version
// and creation time, and Body as PostgreSQL normalises JSON (key order and
// whitespace may differ). Returns EINVALID naming the field for a malformed
// ID, a body that is not a JSON object, text that cannot be stored or an
// unknown tenant.
func (s *Store) PutFlow(ctx context.Context, f controller.FlowRecord) (controller.FlowRecord, error) {
	if f.TenantID == "" {
		f.TenantID = controller.DefaultTenant
	}
	if err := checkMediaName("id", f.ID); err != nil {
		return f, fmt.Errorf("saving flow: %w", err)
	}
	for field, v := range map[string]string{"tenant_id": f.TenantID, "name": f.Name} {
		if err := checkStoredText(field, v); err != nil {
			return f, fmt.Errorf("saving flow: %w", err)
		}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(f.Body, &obj); err != nil || obj == nil {
		return f, fmt.Errorf("saving flow: %w", controller.FieldError("flow", "must be a JSON object"))
	}
	var saved controller.FlowRecord
	err := s.putVersion(ctx, "flow", f.TenantID, f.ID, func(tx pgx.Tx) error {
		var err error
		saved, err = scanFlow(tx.QueryRow(ctx, `
			INSERT INTO flows (tenant_id, id, version, name, body)
			SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4
			FROM flows WHERE tenant_id = $1 AND id = $2
			RETURNING `+flowColumns, f.TenantID, f.ID, f.Name, []byte(f.Body)))
		return err
	})
	if isForeignKeyViolation(err) {
		return f, fmt.Errorf("saving flow: %w", controller.FieldError("tenant_id", "unknown tenant %q", f.TenantID))
	}
	if err != nil {
		return f, fmt.Errorf("saving flow %s: %w", f.ID, err)
	}
	return saved, nil
}

// GetFlow returns version of a flow, the newest if version is 0. Returns
// ENOTFOUND if the flow or version does not exist for the tenant.
func (s *Store) GetFlow(ctx context.Context, tenant, id string, version int) (controller.FlowRecord, error) {
	f, err := scanFlow(s.db.pool.QueryRow(ctx, `SELECT `+flowColumns+` FROM flows
		WHERE tenant_id = $1 AND id = $2 AND ($3 = 0 OR version = $3)
		ORDER BY version DESC LIMIT 1`, tenant, id, version))
	if errors.Is(err, pgx.ErrNoRows) {
		if version != 0 {
			return f, controller.Errorf(controller.ENOTFOUND, "flow %q has no version %d", id, version)
		}
		return f, flowNotFound(id)
	}
	if err != nil {
		return f, fmt.Errorf("getting flow %s: %w", id, translate(err))
	}
	return f, nil
}

// ListFlows returns the newest version of each of the tenant's flows,
// ordered by ID.
func (s *Store) ListFlows(ctx context.Context, tenant string) ([]controller.FlowRecord, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT DISTINCT ON (id) `+flowColumns+` FROM flows
		WHERE tenant_id = $1 ORDER BY id, version DESC`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing flows: %w", translate(err))
	}
	flows, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.FlowRecord, error) {
		return scanFlow(row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing flows: %w", translate(err))
	}
	if flows == nil {
		flows = []controller.FlowRecord{}
	}
	return flows, nil
}

const flowRunColumns = `call_id::text, tenant_id, flow_id, flow_version, outcome, path, started_at, ended_at`

func scanFlowRun(row pgx.Row) (controller.FlowRun, error) {
	var r controller.FlowRun
	err := row.Scan(&r.CallID, &r.TenantID, &r.FlowID, &r.FlowVersion, &r.Outcome, &r.Path,
		&r.StartedAt, &r.EndedAt)
	return r, err
}

func flowRunNotFound(id controller.CallID) error {
	return controller.Errorf(controller.ENOTFOUND, "call %s has no flow run", id)
}

// SaveFlowRun inserts or replaces the run of a call. An empty tenant is the
// default one, a zero StartedAt now and an empty Path an empty list. Returns
// ENOTFOUND if the call does not exist for the tenant; EINVALID naming the
// field for a malformed call or flow ID, a version below 1, an empty outcome,
// a path that is not JSON or text that cannot be stored.
func (s *Store) SaveFlowRun(ctx context.Context, r controller.FlowRun) error {
	if r.TenantID == "" {
		r.TenantID = controller.DefaultTenant
	}
	if _, err := uuid.Parse(string(r.CallID)); err != nil {
		return fmt.Errorf("saving flow run: %w", controller.FieldError("call_id", "not a UUID"))
	}
	if err := checkMediaName("flow_id", r.FlowID); err != nil {
		return fmt.Errorf("saving flow run: %w", err)
	}
	if r.FlowVersion < 1 {
		return fmt.Errorf("saving flow run: %w", controller.FieldError("flow_version", "must be at least 1"))
	}
	if r.Outcome == "" {
		return fmt.Errorf("saving flow run: %w", controller.FieldError("outcome", "must not be empty"))
	}
	for field, v := range map[string]string{"tenant_id": r.TenantID, "outcome": r.Outcome} {
		if err := checkStoredText(field, v); err != nil {
			return fmt.Errorf("saving flow run: %w", err)
		}
	}
	path := []byte(r.Path)
	if len(path) == 0 {
		path = []byte("[]")
	} else if !json.Valid(path) {
		return fmt.Errorf("saving flow run: %w", controller.FieldError("path", "must be JSON"))
	}
	tag, err := s.db.pool.Exec(ctx, `
		INSERT INTO flow_runs (call_id, tenant_id, flow_id, flow_version, outcome, path, started_at, ended_at)
		SELECT c.id, c.tenant_id, $3, $4, $5, $6, coalesce($7, statement_timestamp()), $8
		FROM calls c WHERE c.id = $1 AND c.tenant_id = $2
		ON CONFLICT (call_id) DO UPDATE SET flow_id = excluded.flow_id,
			flow_version = excluded.flow_version, outcome = excluded.outcome, path = excluded.path,
			started_at = excluded.started_at, ended_at = excluded.ended_at`,
		r.CallID, r.TenantID, r.FlowID, r.FlowVersion, r.Outcome, path, nullTime(r.StartedAt), r.EndedAt)
	if err != nil {
		return fmt.Errorf("saving flow run of call %s: %w", r.CallID, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("saving flow run: %w", notFound(r.CallID))
	}
	return nil
}

// GetFlowRun returns the run of a call. Returns ENOTFOUND if the call has no
// run for the tenant.
func (s *Store) GetFlowRun(ctx context.Context, tenant string, id controller.CallID) (controller.FlowRun, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return controller.FlowRun{}, flowRunNotFound(id)
	}
	r, err := scanFlowRun(s.db.pool.QueryRow(ctx, `SELECT `+flowRunColumns+` FROM flow_runs
		WHERE call_id = $1 AND tenant_id = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, flowRunNotFound(id)
	}
	if err != nil {
		return r, fmt.Errorf("getting flow run of call %s: %w", id, translate(err))
	}
	return r, nil
}
