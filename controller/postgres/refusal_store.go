package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// refusalColumns are the columns scanRefusal reads, in its order.
var refusalColumns = refusalColumnsOf("")

// refusalColumnsOf returns refusalColumns of the table aliased alias ("" for
// none).
func refusalColumnsOf(alias string) string {
	if alias != "" {
		alias += "."
	}
	return strings.NewReplacer("$.", alias).Replace(`$.id::text, coalesce($.number, ''), $.number_sealed, $.source,
	coalesce($.call_id::text, ''), $.at, $.until, $.lifted_at`)
}

// scanRefusal scans refusalColumns (then extra) and opens the number with pd.
func scanRefusal(pd controller.PersonalData, row pgx.Row, extra ...any) (controller.Refusal, error) {
	var (
		r      controller.Refusal
		sealed []byte
	)
	err := row.Scan(append([]any{&r.ID, &r.Number, &sealed, &r.Source, &r.CallID, &r.At, &r.Until, &r.LiftedAt},
		extra...)...)
	if err == nil {
		r.Number, err = openNumber(pd, r.Number, sealed)
	}
	return r, err
}

// refusalSources are the ways a refusal reaches callgate.
var refusalSources = []string{"ivr", "sms", "agent", "api"}

// lockNumberRefusalSQL stores a refusal and cancels, in every tenant, the
// calls to its number that are still queued (their attempts queued, or
// claimed but not sent), recording a call event for each. It runs under the
// number's lock.
const lockNumberRefusalSQL = `
WITH r AS (
	INSERT INTO refusals (id, number_index, number_sealed, source, call_id, at, until, tenant_id)
	VALUES ($1, $10, $11, $3, $4, coalesce($5, statement_timestamp()), $6, $7)
	RETURNING id, at
), c AS (
	UPDATE calls SET state = 'canceled', updated_at = statement_timestamp(), ended_at = statement_timestamp()
	WHERE id IN (SELECT id FROM calls WHERE to_index = $10 AND state = 'queued'
		UNION ALL SELECT id FROM calls WHERE to_number = $2 AND state = 'queued') AND state = 'queued'
	RETURNING id, tenant_id
), a AS (
	UPDATE attempts SET status = 'canceled', release_reason = 'refusal ' || $1::text
	FROM c WHERE attempts.call_id = c.id AND attempts.status IN ('queued', 'claimed')
), e AS (
	INSERT INTO call_events (tenant_id, call_id, from_state, to_state, kind, at, event)
	SELECT c.tenant_id, c.id, 'queued', 'canceled', $8, r.at,
		$9::jsonb || jsonb_build_object('call_id', c.id, 'at', r.at)
	FROM c, r
)
SELECT (SELECT count(*) FROM c)`

// LockNumber records a refusal — the number is locked for every tenant until
// r.Until, forever if nil — on behalf of tenant (who recorded it; default if
// empty) and, in the same transaction and under the number's lock, cancels
// every call to the number that is still queued, in any tenant: its attempt
// queued, or claimed but not yet sent. A concurrent CreateCallGated for the
// number therefore either sees the refusal or has its attempt canceled. A
// zero r.At is now; r.ID is used if set, else a new UUID. Returns the
// refusal's ID and how many calls were canceled; EINVALID naming the field
// for a number that is not E.164, an unknown source, an Until not after At, or
// a malformed ID or call ID; ECONFLICT if the ID exists.
func (s *Store) LockNumber(ctx context.Context, tenant string, r controller.Refusal) (string, int, error) {
	if r.ID == "" {
		r.ID = uuid.NewString()
	} else if _, err := uuid.Parse(r.ID); err != nil {
		return "", 0, fmt.Errorf("locking number: %w", controller.FieldError("id", "not a UUID"))
	}
	if tenant == "" {
		tenant = controller.DefaultTenant
	}
	if err := checkE164("number", r.Number); err != nil {
		return "", 0, fmt.Errorf("locking number: %w", err)
	}
	if !oneOf(r.Source, refusalSources) {
		return "", 0, fmt.Errorf("locking number: %w", controller.FieldError("source", "must be one of %v", refusalSources))
	}
	var callID *string
	if r.CallID != "" {
		if _, err := uuid.Parse(string(r.CallID)); err != nil {
			return "", 0, fmt.Errorf("locking number: %w", controller.FieldError("call_id", "not a UUID"))
		}
		callID = (*string)(&r.CallID)
	}
	if r.Until != nil && !r.At.IsZero() && !r.Until.After(r.At) {
		return "", 0, fmt.Errorf("locking number: %w", controller.FieldError("until", "must be after at"))
	}
	if err := checkStoredText("tenant_id", tenant); err != nil {
		return "", 0, fmt.Errorf("locking number: %w", err)
	}
	ev, err := json.Marshal(controller.ChannelEvent{Kind: eventRefusalCanceled, Detail: "number refused: refusal " + r.ID})
	if err != nil {
		return "", 0, fmt.Errorf("locking number: encoding event: %w", err)
	}
	index, sealed, err := sealNumber(s.pd, r.Number)
	if err != nil {
		return "", 0, fmt.Errorf("locking number: %w", err)
	}
	var canceled int
	err = pgx.BeginTxFunc(ctx, s.db.pool, readCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockNumberSQL, r.Number); err != nil {
			return fmt.Errorf("locking number: %w", translate(err))
		}
		return tx.QueryRow(ctx, lockNumberRefusalSQL, r.ID, r.Number, r.Source, callID, nullTime(r.At),
			r.Until, tenant, string(eventRefusalCanceled), ev, index, sealed).Scan(&canceled)
	})
	if err != nil {
		return "", 0, fmt.Errorf("locking %s: %w", controller.MaskNumber(r.Number), translate(err))
	}
	return r.ID, canceled, nil
}

// ListRefusals returns every refusal of number, lifted or expired ones
// included, newest first. Returns EINVALID if number is not E.164.
func (s *Store) ListRefusals(ctx context.Context, number string) ([]controller.Refusal, error) {
	if err := checkE164("number", number); err != nil {
		return nil, fmt.Errorf("listing refusals: %w", err)
	}
	index, err := s.numberIndex(number)
	if err != nil {
		return nil, fmt.Errorf("listing refusals: %w", err)
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+refusalColumnsOf("r")+` FROM (
			SELECT * FROM refusals WHERE number_index = $1
			UNION ALL
			SELECT * FROM refusals WHERE number = $2) r
		ORDER BY r.at DESC, r.id`, index, number)
	if err != nil {
		return nil, fmt.Errorf("listing refusals: %w", translate(err))
	}
	refusals, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.Refusal, error) {
		return scanRefusal(s.pd, row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing refusals: %w", translate(err))
	}
	if refusals == nil {
		refusals = []controller.Refusal{}
	}
	return refusals, nil
}

// LiftRefusal ends a refusal lock the tenant recorded at at (now if zero)
// and returns it. Returns ENOTFOUND if the tenant recorded no such lock (a
// lock holds for every tenant, but only the one that recorded it may lift
// it), ECONFLICT if it was already lifted.
func (s *Store) LiftRefusal(ctx context.Context, tenant, id string, at time.Time) (controller.Refusal, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Refusal{}, refusalNotFound(id)
	}
	if tenant == "" {
		tenant = controller.DefaultTenant
	}
	var lifted bool
	r, err := scanRefusal(s.pd, s.db.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE refusals SET lifted_at = coalesce($2, statement_timestamp())
			WHERE id = $1 AND lifted_at IS NULL AND tenant_id = $3
			RETURNING `+refusalColumns+`
		)
		SELECT u.*, true FROM u
		UNION ALL
		SELECT `+refusalColumns+`, false FROM refusals WHERE id = $1 AND tenant_id = $3 AND NOT EXISTS (SELECT 1 FROM u)`,
		id, nullTime(at), tenant), &lifted)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, refusalNotFound(id)
	}
	if err != nil {
		return r, fmt.Errorf("lifting refusal %s: %w", id, translate(err))
	}
	if !lifted {
		return r, fmt.Errorf("lifting refusal %s: %w", id, controller.Errorf(controller.ECONFLICT, "refusal was already lifted"))
	}
	return r, nil
}

func refusalNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "refusal %s not found", id)
}
