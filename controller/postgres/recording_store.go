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

var _ controller.RecordingStore = (*Store)(nil)

// rewrapBatch is how many recordings RewrapKeys locks and rewraps in one
// transaction.
const rewrapBatch = 500

const recordingColumns = `id::text, tenant_id, call_id::text, status, spool_path, blob_key, key_id,
	wrapped_key, sha256, size, duration_ms, channels, consent_id, error, created_at, stored_at,
	retain_until, shredded_at`

func scanRecording(row pgx.Row) (controller.Recording, error) {
	var r controller.Recording
	err := row.Scan(&r.ID, &r.TenantID, &r.CallID, &r.Status, &r.SpoolPath, &r.BlobKey, &r.KeyID,
		&r.WrappedKey, &r.SHA256, &r.Size, &r.DurationMS, &r.Channels, &r.ConsentID, &r.Error,
		&r.CreatedAt, &r.StoredAt, &r.RetainUntil, &r.ShreddedAt)
	return r, err
}

func collectRecordings(rows pgx.Rows, err error) ([]controller.Recording, error) {
	if err != nil {
		return nil, translate(err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.Recording, error) {
		return scanRecording(row)
	})
	if err != nil {
		return nil, translate(err)
	}
	if recs == nil {
		recs = []controller.Recording{}
	}
	return recs, nil
}

func recordingNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "recording %s not found", id)
}

// CreateRecording stores a new recording of a call in state RecordingActive
// and returns it with its ID (r.ID if set, else a new UUID), tenant (the
// default one if empty) and creation time; the other fields but SpoolPath and
// ConsentID are ignored. Returns EINVALID naming the field for a malformed ID
// or call ID, text that cannot be stored, an unknown tenant or a call that
// does not exist for the tenant.
func (s *Store) CreateRecording(ctx context.Context, r controller.Recording) (controller.Recording, error) {
	if r.ID == "" {
		r.ID = uuid.NewString()
	} else if _, err := uuid.Parse(r.ID); err != nil {
		return r, fmt.Errorf("creating recording: %w", controller.FieldError("id", "not a UUID"))
	}
	if r.TenantID == "" {
		r.TenantID = controller.DefaultTenant
	}
	if _, err := uuid.Parse(string(r.CallID)); err != nil {
		return r, fmt.Errorf("creating recording: %w", controller.FieldError("call_id", "not a UUID"))
	}
	for field, v := range map[string]string{"tenant_id": r.TenantID, "spool_path": r.SpoolPath,
		"consent_id": r.ConsentID} {
		if err := checkStoredText(field, v); err != nil {
			return r, fmt.Errorf("creating recording: %w", err)
		}
	}
	rec, err := scanRecording(s.db.pool.QueryRow(ctx, `
		INSERT INTO recordings (id, tenant_id, call_id, status, spool_path, consent_id)
		SELECT $1, c.tenant_id, c.id, 'recording', $4, $5
		FROM calls c WHERE c.id = $3 AND c.tenant_id = $2
		RETURNING `+recordingColumns, r.ID, r.TenantID, r.CallID, r.SpoolPath, r.ConsentID))
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("creating recording of call %s: %w", r.CallID, translate(err))
	}
	// No call of the tenant: say whether the tenant or the call is unknown.
	var tenantExists bool
	if err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`,
		r.TenantID).Scan(&tenantExists); err != nil {
		return r, fmt.Errorf("creating recording: looking up tenant: %w", translate(err))
	}
	if !tenantExists {
		return r, fmt.Errorf("creating recording: %w", controller.FieldError("tenant_id", "unknown tenant %q", r.TenantID))
	}
	return r, fmt.Errorf("creating recording: %w", controller.FieldError("call_id", "call %s not found", r.CallID))
}

// GetRecording returns a recording. Returns ENOTFOUND if it does not exist
// for the tenant ("" for any tenant: internal use only).
func (s *Store) GetRecording(ctx context.Context, tenant, id string) (controller.Recording, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Recording{}, recordingNotFound(id)
	}
	r, err := scanRecording(s.db.pool.QueryRow(ctx, `SELECT `+recordingColumns+` FROM recordings
		WHERE id = $1 AND ($2 = '' OR tenant_id = $2)`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return controller.Recording{}, recordingNotFound(id)
	}
	if err != nil {
		return controller.Recording{}, fmt.Errorf("getting recording %s: %w", id, translate(err))
	}
	return r, nil
}

// ListRecordings returns the recordings of a call of the tenant, oldest
// first; none for a call that does not exist for the tenant.
func (s *Store) ListRecordings(ctx context.Context, tenant string, call controller.CallID) ([]controller.Recording, error) {
	if _, err := uuid.Parse(string(call)); err != nil {
		return []controller.Recording{}, nil
	}
	recs, err := collectRecordings(s.db.pool.Query(ctx, `SELECT `+recordingColumns+` FROM recordings
		WHERE call_id = $1 AND tenant_id = $2 ORDER BY created_at, id`, call, tenant))
	if err != nil {
		return nil, fmt.Errorf("listing recordings of call %s: %w", call, err)
	}
	return recs, nil
}

// ActiveRecordings returns every recording still in RecordingActive, in
// every tenant, oldest first.
func (s *Store) ActiveRecordings(ctx context.Context) ([]controller.Recording, error) {
	recs, err := collectRecordings(s.db.pool.Query(ctx, `SELECT `+recordingColumns+` FROM recordings
		WHERE status = 'recording' ORDER BY created_at, id`))
	if err != nil {
		return nil, fmt.Errorf("listing active recordings: %w", err)
	}
	return recs, nil
}

// transition applies set (an UPDATE's SET list whose parameters start at $3)
// to recording id if its status is from, in one round trip. It returns
// whether it did and, when it did not, the recording's status. Returns
// ENOTFOUND if the recording does not exist.
func (s *Store) transition(ctx context.Context, id, from, set string, args ...any) (bool, string, error) {
	if _, err := uuid.Parse(id); err != nil {
		return false, "", recordingNotFound(id)
	}
	// The second branch reads the row as it was before the update (the
	// statement's snapshot). If that still says from, a concurrent
	// transaction changed the status after the snapshot was taken: the next
	// statement sees what it changed it to.
	for range 3 {
		var (
			changed bool
			status  string
		)
		err := s.db.pool.QueryRow(ctx, `
			WITH u AS (
				UPDATE recordings SET `+set+` WHERE id = $1 AND status = $2 RETURNING 1
			)
			SELECT true, $2 FROM u
			UNION ALL
			SELECT false, status FROM recordings WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)`,
			append([]any{id, from}, args...)...).Scan(&changed, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, "", recordingNotFound(id)
		}
		if err != nil {
			return false, "", translate(err)
		}
		if changed || status != from {
			return changed, status, nil
		}
	}
	return false, "", controller.Errorf(controller.ECONFLICT, "recording %s is being changed concurrently, try again", id)
}

// MarkStored records a sealed recording: r's BlobKey, KeyID, WrappedKey,
// SHA256, Size, DurationMS, Channels and RetainUntil, and StoredAt (now if
// nil). Returns ENOTFOUND if the recording does not exist, ECONFLICT unless
// it was RecordingActive, EINVALID naming the field for a missing blob key,
// key ID or wrapped key, a negative size, duration or channel count, or text
// that cannot be stored.
func (s *Store) MarkStored(ctx context.Context, r controller.Recording) error {
	for field, v := range map[string]string{"blob_key": r.BlobKey, "key_id": r.KeyID} {
		if v == "" {
			return fmt.Errorf("storing recording %s: %w", r.ID, controller.FieldError(field, "must not be empty"))
		}
	}
	if len(r.WrappedKey) == 0 {
		return fmt.Errorf("storing recording %s: %w", r.ID, controller.FieldError("wrapped_key", "must not be empty"))
	}
	for field, v := range map[string]string{"blob_key": r.BlobKey, "key_id": r.KeyID, "sha256": r.SHA256} {
		if err := checkStoredText(field, v); err != nil {
			return fmt.Errorf("storing recording %s: %w", r.ID, err)
		}
	}
	for field, v := range map[string]int64{"size": r.Size, "duration_ms": r.DurationMS, "channels": int64(r.Channels)} {
		if v < 0 {
			return fmt.Errorf("storing recording %s: %w", r.ID, controller.FieldError(field, "must not be negative"))
		}
	}
	changed, status, err := s.transition(ctx, r.ID, controller.RecordingActive, `status = 'stored',
		blob_key = $3, key_id = $4, wrapped_key = $5, sha256 = $6, size = $7, duration_ms = $8,
		channels = $9, retain_until = $10, stored_at = coalesce($11, statement_timestamp())`,
		r.BlobKey, r.KeyID, r.WrappedKey, r.SHA256, r.Size, r.DurationMS, r.Channels, r.RetainUntil, r.StoredAt)
	if err != nil {
		return fmt.Errorf("storing recording %s: %w", r.ID, err)
	}
	if !changed {
		return fmt.Errorf("storing recording %s: %w", r.ID,
			controller.Errorf(controller.ECONFLICT, "recording is %s, only an active recording can be stored", status))
	}
	return nil
}

// MarkFailed moves an active recording to RecordingFailed with why. Returns
// ENOTFOUND if it does not exist, ECONFLICT unless it was RecordingActive.
func (s *Store) MarkFailed(ctx context.Context, id, why string) error {
	if err := checkStoredText("error", why); err != nil {
		return fmt.Errorf("failing recording %s: %w", id, err)
	}
	changed, status, err := s.transition(ctx, id, controller.RecordingActive, `status = 'failed', error = $3`, why)
	if err != nil {
		return fmt.Errorf("failing recording %s: %w", id, err)
	}
	if !changed {
		return fmt.Errorf("failing recording %s: %w", id,
			controller.Errorf(controller.ECONFLICT, "recording is %s, only an active recording can fail", status))
	}
	return nil
}

// RewrapKeys calls rewrap for every stored recording whose key is not keyID
// and saves what it returns (the same data key under keyID). It goes through
// them once in ID order, in batches of 500 each locked and saved in one
// transaction, and stops at the first error — of rewrap (what was rewrapped
// before it in the batch is saved) or of the database. Returns how many were
// rewrapped and saved, and EINVALID for an empty keyID.
func (s *Store) RewrapKeys(ctx context.Context, keyID string, rewrap func(r controller.Recording) ([]byte, error)) (int, error) {
	if keyID == "" {
		return 0, fmt.Errorf("rewrapping keys: %w", controller.FieldError("key_id", "must not be empty"))
	}
	done, after := 0, uuid.Nil.String()
	for {
		n, last, err := s.rewrapBatch(ctx, keyID, after, rewrap)
		done += n
		if err != nil {
			return done, fmt.Errorf("rewrapping keys to %s: %w", keyID, err)
		}
		if last == "" {
			return done, nil
		}
		after = last
	}
}

// rewrapBatch rewraps the next batch of recordings after ID after and
// returns how many it saved and the last ID it read ("" if none was left).
func (s *Store) rewrapBatch(ctx context.Context, keyID, after string, rewrap func(r controller.Recording) ([]byte, error)) (int, string, error) {
	tx, err := s.db.pool.Begin(ctx)
	if err != nil {
		return 0, "", translate(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	recs, err := collectRecordings(tx.Query(ctx, `SELECT `+recordingColumns+` FROM recordings
		WHERE status = 'stored' AND key_id <> $1 AND id > $2
		ORDER BY id LIMIT $3 FOR UPDATE`, keyID, after, rewrapBatch))
	if err != nil {
		return 0, "", err
	}
	if len(recs) == 0 {
		return 0, "", nil
	}
	var (
		ids       = make([]string, 0, len(recs))
		keys      = make([][]byte, 0, len(recs))
		rewrapErr error
	)
	for _, r := range recs {
		key, err := rewrap(r)
		if err == nil && len(key) == 0 {
			err = errors.New("the rewrapped key is empty")
		}
		if err != nil {
			rewrapErr = fmt.Errorf("rewrapping recording %s: %w", r.ID, err)
			break
		}
		ids = append(ids, r.ID)
		keys = append(keys, key)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE recordings r SET wrapped_key = u.key, key_id = $3
			FROM unnest($1::uuid[], $2::bytea[]) AS u(id, key)
			WHERE r.id = u.id`, ids, keys, keyID); err != nil {
			return 0, "", translate(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, "", translate(err)
	}
	if rewrapErr != nil {
		return len(ids), "", rewrapErr
	}
	return len(ids), recs[len(recs)-1].ID, nil
}

// ExpiredRecordings returns up to limit stored recordings, in every tenant,
// whose RetainUntil is before now, the longest expired first. Returns
// EINVALID for a limit below 1.
func (s *Store) ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]controller.Recording, error) {
	if limit < 1 {
		return nil, fmt.Errorf("listing expired recordings: %w", controller.FieldError("limit", "must be at least 1"))
	}
	recs, err := collectRecordings(s.db.pool.Query(ctx, `SELECT `+recordingColumns+` FROM recordings
		WHERE status = 'stored' AND retain_until < $1
		ORDER BY retain_until, id LIMIT $2`, now, limit))
	if err != nil {
		return nil, fmt.Errorf("listing expired recordings: %w", err)
	}
	return recs, nil
}

// ShredRecording destroys a stored recording's wrapped data key — after
// which nobody can decrypt it — and marks it RecordingShredded at at (now if
// zero); the caller deletes the ciphertext. Shredding a shredded recording
// does nothing. Returns ENOTFOUND if it does not exist, ECONFLICT if it is
// neither stored nor shredded.
func (s *Store) ShredRecording(ctx context.Context, id string, at time.Time) error {
	changed, status, err := s.transition(ctx, id, controller.RecordingStored, `status = 'shredded',
		wrapped_key = NULL, shredded_at = coalesce($3, statement_timestamp())`, nullTime(at))
	if err != nil {
		return fmt.Errorf("shredding recording %s: %w", id, err)
	}
	if !changed && status != controller.RecordingShredded {
		return fmt.Errorf("shredding recording %s: %w", id,
			controller.Errorf(controller.ECONFLICT, "recording is %s, only a stored recording can be shredded", status))
	}
	return nil
}
