package postgres

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.CallStore = (*Store)(nil)

// Store is controller.CallStore on PostgreSQL.
type Store struct {
	db      *DB
	audit   auditGroup              // group commit of audit appends
	creates createGroup             // group commit of gated creations
	pd      controller.PersonalData // seals and indexes phone numbers; see SetPersonalData
}

// NewStore returns a store on db.
func NewStore(db *DB) *Store { return &Store{db: db} }

// DB returns the database the store uses.
func (s *Store) DB() *DB { return s.db }

// Ping checks the database is reachable. Returns EUNAVAILABLE if it is not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging database: %w", translate(err))
	}
	return nil
}

// callColumns are the columns scanCall reads, in its order, from calls as c.
const callColumns = `c.id::text, c.tenant_id, coalesce(c.attempt_id, 0), c.switch, coalesce(c.to_number, ''), c.to_sealed,
	c.from_number, c.caller_id_name, c.timeout_ms, c.variables, c.state, c.hangup_cause,
	c.sip_status, c.billsec, c.duration, c.reconciled, coalesce(c.idempotency_key, ''),
	c.created_at, c.updated_at, c.answered_at, c.ended_at, c.purpose, coalesce(c.flow_id, ''),
	coalesce(c.agent_id, ''), c.tags, c.disposition, coalesce(c.campaign_id::text, ''),
	coalesce(c.lead_id, 0), coalesce(c.variant, ''), c.callee_zone, c.trunk`

// scanCall scans callColumns (then extra) and opens the number.
func (s *Store) scanCall(row pgx.Row, extra ...any) (controller.Call, error) {
	var (
		c         controller.Call
		timeoutMS int64
		vars      []byte
		tags      []byte
		sealed    []byte
	)
	dest := append([]any{&c.ID, &c.TenantID, &c.AttemptID, &c.Switch, &c.To, &sealed,
		&c.From, &c.CallerIDName, &timeoutMS, &vars, &c.State, &c.HangupCause,
		&c.SIPStatus, &c.Billsec, &c.Duration, &c.Reconciled, &c.IdempotencyKey,
		&c.CreatedAt, &c.UpdatedAt, &c.AnsweredAt, &c.EndedAt, &c.Purpose, &c.FlowID, &c.AgentID, &tags, &c.Disposition,
		&c.CampaignID, &c.LeadID, &c.Variant, &c.CalleeZone, &c.Trunk}, extra...)
	if err := row.Scan(dest...); err != nil {
		return c, err
	}
	var err error
	if c.To, err = openNumber(s.pd, c.To, sealed); err != nil {
		return c, fmt.Errorf("call %s: %w", c.ID, err)
	}
	c.Timeout = time.Duration(timeoutMS) * time.Millisecond
	if len(tags) > 2 { // not "{}"
		if err := json.Unmarshal(tags, &c.Tags); err != nil {
			return c, fmt.Errorf("decoding tags of call %s: %w", c.ID, err)
		}
	}
	if len(vars) > 0 {
		if err := json.Unmarshal(vars, &c.Variables); err != nil {
			return c, fmt.Errorf("decoding variables of call %s: %w", c.ID, err)
		}
	}
	return c, nil
}

func (s *Store) collectCalls(rows pgx.Rows) ([]controller.Call, error) {
	defer rows.Close()
	var calls []controller.Call
	for rows.Next() {
		c, err := s.scanCall(rows)
		if err != nil {
			return nil, err
		}
		calls = append(calls, c)
	}
	return calls, rows.Err()
}

// createCallSQL inserts the idempotency key (when there is one), the call and
// its attempt in one statement. When the key is already taken it inserts
// nothing and returns no row: ON CONFLICT DO NOTHING waits for a concurrent
// transaction holding the same key, so exactly one request creates the call.
const createCallSQL = `
WITH key AS (
	INSERT INTO idempotency_keys (tenant_id, key, request_hash, call_id)
	SELECT $2::text, $9::text, $10::text, $1::uuid WHERE $9::text <> ''
	ON CONFLICT DO NOTHING
	RETURNING 1
), gate AS (
	SELECT 1 WHERE $9::text = '' UNION ALL SELECT 1 FROM key
), c AS (
	INSERT INTO calls (id, tenant_id, attempt_id, switch, to_index, to_sealed, from_number,
		caller_id_name, timeout_ms, variables, state, idempotency_key, purpose, flow_id, agent_id, trunk)
	SELECT $1::uuid, $2::text, nextval('attempts_id_seq'), $3::text, $4::bytea, $15::bytea, $5::text,
		$6::text, $7::int, $8::jsonb, 'queued', nullif($9::text, ''), $11::text, nullif($12::text, ''),
		nullif($13::text, ''), $14::text
	FROM gate
	RETURNING attempt_id, created_at, updated_at
), a AS (
	INSERT INTO attempts (id, tenant_id, call_id, status, switch, not_before, created_at)
	SELECT c.attempt_id, $2::text, $1::uuid, 'queued', nullif($3::text, ''), c.created_at, c.created_at
	FROM c
)
SELECT attempt_id, created_at, updated_at FROM c`

// CreateCall writes c (state queued) and its attempt, due now, in one
// statement and fills in its ID (a new UUID unless set), tenant (default if
// empty), attempt ID and timestamps. With an idempotency key already used it
// returns the first call created with it and created=false if requestHash
// matches, ECONFLICT if not. Returns EINVALID for a malformed ID and
// ENOTFOUND for an unknown tenant.
func (s *Store) CreateCall(ctx context.Context, c controller.Call, requestHash string) (controller.Call, bool, error) {
	if c.ID == "" {
		c.ID = controller.CallID(uuid.NewString())
	} else if _, err := uuid.Parse(string(c.ID)); err != nil {
		return c, false, fmt.Errorf("creating call: %w", controller.FieldError("id", "not a UUID: %q", c.ID))
	}
	if c.TenantID == "" {
		c.TenantID = controller.DefaultTenant
	}
	var vars []byte
	if len(c.Variables) > 0 {
		var err error
		if vars, err = json.Marshal(c.Variables); err != nil {
			return c, false, fmt.Errorf("creating call %s: encoding variables: %w", c.ID, err)
		}
	}
	index, sealed, err := sealNumber(s.pd, c.To)
	if err != nil {
		return c, false, fmt.Errorf("creating call %s: %w", c.ID, err)
	}
	for range 3 { // a key can vanish between the insert and the lookup only if deleted
		err := s.db.pool.QueryRow(ctx, createCallSQL, c.ID, c.TenantID, c.Switch, index, c.From,
			c.CallerIDName, c.Timeout.Milliseconds(), vars, c.IdempotencyKey, requestHash, string(c.Purpose), c.FlowID, c.AgentID,
			c.Trunk, sealed,
		).Scan(&c.AttemptID, &c.CreatedAt, &c.UpdatedAt)
		if err == nil {
			c.State = controller.CallQueued
			return c, true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			if controller.ErrorCode(translate(err)) == controller.ENOTFOUND {
				return c, false, fmt.Errorf("creating call %s: %w", c.ID,
					controller.FieldError("tenant_id", "unknown tenant %q", c.TenantID))
			}
			return c, false, fmt.Errorf("creating call %s: %w", c.ID, translate(err))
		}
		var hash string
		existing, err := s.scanCall(s.db.pool.QueryRow(ctx, `
			SELECT `+callColumns+`, k.request_hash
			FROM idempotency_keys k JOIN calls c ON c.id = k.call_id
			WHERE k.tenant_id = $1 AND k.key = $2`, c.TenantID, c.IdempotencyKey), &hash)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return c, false, fmt.Errorf("creating call: looking up idempotency key: %w", translate(err))
		}
		if hash != requestHash {
			return c, false, fmt.Errorf("creating call: %w",
				controller.Errorf(controller.ECONFLICT, "Idempotency-Key was used with a different request"))
		}
		return existing, false, nil
	}
	return c, false, fmt.Errorf("creating call: %w",
		controller.Errorf(controller.ECONFLICT, "Idempotency-Key is being reused concurrently, try again"))
}

// GetCall returns the call. Returns ENOTFOUND if it does not exist for the
// tenant.
func (s *Store) GetCall(ctx context.Context, tenant string, id controller.CallID) (controller.Call, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return controller.Call{}, notFound(id)
	}
	c, err := s.scanCall(s.db.pool.QueryRow(ctx,
		`SELECT `+callColumns+` FROM calls c WHERE c.id = $1 AND c.tenant_id = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, notFound(id)
	}
	if err != nil {
		return c, fmt.Errorf("getting call %s: %w", id, translate(err))
	}
	return c, nil
}

// CallEnded reports whether a call, in any tenant, is in a terminal state
// (for the recording sweep, which must leave live calls' files alone).
// Returns ENOTFOUND if it does not exist.
func (s *Store) CallEnded(ctx context.Context, id controller.CallID) (bool, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return false, notFound(id)
	}
	var st controller.CallState
	err := s.db.pool.QueryRow(ctx, `SELECT state FROM calls WHERE id = $1`, id).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, notFound(id)
	}
	if err != nil {
		return false, fmt.Errorf("reading state of call %s: %w", id, translate(err))
	}
	return st.Terminal(), nil
}

func notFound(id controller.CallID) error {
	return controller.Errorf(controller.ENOTFOUND, "call %s not found", id)
}

// ListCalls returns a page of calls, newest first, matching f. CreatedAfter is
// inclusive and CreatedBefore exclusive. Returns EINVALID naming the field
// for a malformed cursor or a limit outside 0..200.
func (s *Store) ListCalls(ctx context.Context, f controller.CallFilter) (controller.CallPage, error) {
	limit := f.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 200:
		return controller.CallPage{}, controller.FieldError("limit", "must be between 1 and 200")
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.TenantID != "" {
		add("c.tenant_id = $%d", f.TenantID)
	}
	if f.AgentID != "" {
		add("c.agent_id = $%d", f.AgentID)
	}
	if f.State != "" {
		add("c.state = $%d", string(f.State))
	}
	if f.Switch != "" {
		add("c.switch = $%d", f.Switch)
	}
	if f.To != "" {
		index, err := s.numberIndex(f.To)
		if err != nil {
			return controller.CallPage{}, fmt.Errorf("listing calls: %w", err)
		}
		args = append(args, index, f.To)
		where = append(where, fmt.Sprintf("(c.to_index = $%d OR c.to_number = $%d)", len(args)-1, len(args)))
	}
	if !f.CreatedAfter.IsZero() {
		add("c.created_at >= $%d", f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		add("c.created_at < $%d", f.CreatedBefore)
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return controller.CallPage{}, err
		}
		args = append(args, at, id)
		where = append(where, fmt.Sprintf("(c.created_at, c.id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	q := `SELECT ` + callColumns + ` FROM calls c`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	q += fmt.Sprintf(` ORDER BY c.created_at DESC, c.id DESC LIMIT $%d`, len(args))

	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return controller.CallPage{}, fmt.Errorf("listing calls: %w", translate(err))
	}
	calls, err := s.collectCalls(rows)
	if err != nil {
		return controller.CallPage{}, fmt.Errorf("listing calls: %w", translate(err))
	}
	page := controller.CallPage{Calls: calls}
	if len(calls) > limit {
		page.Calls = calls[:limit]
		last := page.Calls[limit-1]
		page.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	if page.Calls == nil {
		page.Calls = []controller.Call{}
	}
	return page, nil
}

// A cursor is the created_at (Unix microseconds) and id of the last call of a
// page, as 24 bytes in URL-safe base64.
func encodeCursor(at time.Time, id controller.CallID) string {
	u := uuid.MustParse(string(id))
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 24), uint64(at.UnixMicro()))
	return base64.RawURLEncoding.EncodeToString(append(b, u[:]...))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return time.Time{}, "", controller.FieldError("cursor", "malformed cursor")
	}
	u, _ := uuid.FromBytes(b[8:])
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))), u.String(), nil
}

// ListCallEvents returns a call's events in the switch's order: by event
// sequence, with each synthetic event (no sequence) placed after the events
// stored before it. Returns ENOTFOUND if the call does not exist for the
// tenant.
func (s *Store) ListCallEvents(ctx context.Context, tenant string, id controller.CallID) ([]controller.CallEventRecord, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return nil, notFound(id)
	}
	rows, err := s.db.pool.Query(ctx, `
		SELECT e.id, e.from_state, e.to_state, e.event, e.recorded_at
		FROM calls c
		LEFT JOIN LATERAL (
			SELECT *, coalesce(sequence, max(sequence) OVER (ORDER BY id), 0) AS ord
			FROM call_events WHERE call_id = c.id
		) e ON true
		WHERE c.id = $1 AND c.tenant_id = $2
		ORDER BY e.ord, e.id`, id, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing events of call %s: %w", id, translate(err))
	}
	defer rows.Close()
	found := false
	events := []controller.CallEventRecord{}
	for rows.Next() {
		found = true
		var (
			evID       *int64
			from, to   *string
			raw        []byte
			recordedAt *time.Time
		)
		if err := rows.Scan(&evID, &from, &to, &raw, &recordedAt); err != nil {
			return nil, fmt.Errorf("listing events of call %s: %w", id, translate(err))
		}
		if evID == nil {
			continue // the call has no events
		}
		rec := controller.CallEventRecord{ID: *evID, CallID: id, FromState: controller.CallState(*from),
			ToState: controller.CallState(*to), RecordedAt: *recordedAt}
		if err := json.Unmarshal(raw, &rec.Event); err != nil {
			return nil, fmt.Errorf("decoding event %d of call %s: %w", *evID, id, err)
		}
		events = append(events, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing events of call %s: %w", id, translate(err))
	}
	if !found {
		return nil, notFound(id)
	}
	return events, nil
}

// CancelCall cancels a call that is still queued (even if claimed but not yet
// sent) and its attempt, and returns it. Returns ENOTFOUND if the call does
// not exist for the tenant, ECONFLICT if it has been sent or has ended.
func (s *Store) CancelCall(ctx context.Context, tenant string, id controller.CallID) (controller.Call, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return controller.Call{}, notFound(id)
	}
	c, err := s.scanCall(s.db.pool.QueryRow(ctx, `
		WITH c AS (
			UPDATE calls SET state = 'canceled', updated_at = now(), ended_at = now()
			WHERE id = $1 AND tenant_id = $2 AND state = 'queued'
			RETURNING *
		), a AS (
			UPDATE attempts SET status = 'canceled' FROM c WHERE attempts.call_id = c.id
		)
		SELECT `+callColumns+` FROM c`, id, tenant))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("canceling call %s: %w", id, translate(err))
	}
	current, err := s.GetCall(ctx, tenant, id)
	if err != nil {
		return current, fmt.Errorf("canceling call: %w", err)
	}
	return current, fmt.Errorf("canceling call %s: %w", id,
		controller.Errorf(controller.ECONFLICT, "call is %s, only a queued call can be canceled", current.State))
}

// TagCall merges tags into the tenant's call id (an empty value removes a
// tag) and sets its disposition unless disposition is empty, and returns the
// call. Returns ENOTFOUND if the tenant has no such call.
func (s *Store) TagCall(ctx context.Context, tenant string, id controller.CallID, tags map[string]string, disposition string) (controller.Call, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return controller.Call{}, notFound(id)
	}
	set, drop := map[string]string{}, []string{}
	for k, v := range tags {
		if v == "" {
			drop = append(drop, k)
		} else {
			set[k] = v
		}
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return controller.Call{}, fmt.Errorf("tagging call %s: %w", id, err)
	}
	c, err := s.scanCall(s.db.pool.QueryRow(ctx, `
		UPDATE calls c SET tags = (c.tags - $4::text[]) || $3::jsonb,
			disposition = CASE WHEN $5::text = '' THEN c.disposition ELSE $5::text END,
			updated_at = now()
		WHERE c.id = $1 AND c.tenant_id = $2
		RETURNING `+callColumns, id, tenant, raw, drop, disposition))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, notFound(id)
	}
	if err != nil {
		return c, fmt.Errorf("tagging call %s: %w", id, translate(err))
	}
	return c, nil
}
