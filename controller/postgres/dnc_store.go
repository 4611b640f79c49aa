package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/callgate/callgate/controller"
)

// querier is what both the pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// dncKinds are the kinds of do-not-call list.
var dncKinds = []string{"internal", "national", "other"}

// dncListColumns are the columns scanDNCList reads, in its order.
const dncListColumns = `id, coalesce(tenant_id, ''), name, kind, source, last_scrub_at, entries`

func scanDNCList(row pgx.Row) (controller.DNCList, error) {
	var (
		l       controller.DNCList
		scrubAt *time.Time
	)
	if err := row.Scan(&l.ID, &l.TenantID, &l.Name, &l.Kind, &l.Source, &scrubAt, &l.Entries); err != nil {
		return l, err
	}
	if scrubAt != nil {
		l.LastScrubAt = *scrubAt
	}
	return l, nil
}

func dncListNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "do-not-call list %q not found", id)
}

// CreateDNCList records a do-not-call list and returns it. An empty TenantID
// makes it global: checked for every tenant (a national registry). An empty
// ID becomes a new UUID; a zero LastScrubAt means never scrubbed; Entries is
// ignored (a new list is empty). Returns EINVALID naming the field for an
// unknown kind, a missing name, an ID or text that cannot be stored or an
// unknown tenant; ECONFLICT if the ID exists.
func (s *Store) CreateDNCList(ctx context.Context, l controller.DNCList) (controller.DNCList, error) {
	if l.ID == "" {
		l.ID = uuid.NewString()
	}
	if err := controller.CheckText("id", l.ID); err != nil || len(l.ID) > 200 {
		return l, fmt.Errorf("creating do-not-call list: %w",
			controller.FieldError("id", "must be at most 200 printable characters, without quotes or brackets"))
	}
	if l.Name == "" {
		return l, fmt.Errorf("creating do-not-call list: %w", controller.FieldError("name", "is required"))
	}
	if !oneOf(l.Kind, dncKinds) {
		return l, fmt.Errorf("creating do-not-call list: %w", controller.FieldError("kind", "must be one of %v", dncKinds))
	}
	for field, v := range map[string]string{"tenant_id": l.TenantID, "name": l.Name, "source": l.Source} {
		if err := checkStoredText(field, v); err != nil {
			return l, fmt.Errorf("creating do-not-call list: %w", err)
		}
	}
	l.Entries = 0
	_, err := s.db.pool.Exec(ctx, `
		INSERT INTO dnc_lists (id, tenant_id, name, kind, source, last_scrub_at)
		VALUES ($1, nullif($2, ''), $3, $4, $5, $6)`,
		l.ID, l.TenantID, l.Name, l.Kind, l.Source, nullTime(l.LastScrubAt))
	if err != nil {
		err = translate(err)
		if isForeignKeyViolation(err) {
			return l, fmt.Errorf("creating do-not-call list: %w", controller.FieldError("tenant_id", "unknown tenant %q", l.TenantID))
		}
		return l, fmt.Errorf("creating do-not-call list %s: %w", l.ID, err)
	}
	return l, nil
}

// GetDNCList returns a list the tenant can see: its own or a global one.
// Returns ENOTFOUND otherwise.
func (s *Store) GetDNCList(ctx context.Context, tenant, id string) (controller.DNCList, error) {
	l, err := scanDNCList(s.db.pool.QueryRow(ctx, `SELECT `+dncListColumns+` FROM dnc_lists
		WHERE id = $1 AND (tenant_id = $2 OR tenant_id IS NULL)`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return l, dncListNotFound(id)
	}
	if err != nil {
		return l, fmt.Errorf("getting do-not-call list %s: %w", id, translate(err))
	}
	return l, nil
}

// ListDNCLists returns the tenant's lists and the global ones, ordered by ID,
// with their entry counts (kept in the list row: no counting).
func (s *Store) ListDNCLists(ctx context.Context, tenant string) ([]controller.DNCList, error) {
	return listDNCLists(ctx, s.db.pool, tenant)
}

// dncListsSQL reads the lists tenant $1 can see.
const dncListsSQL = `SELECT ` + dncListColumns + ` FROM dnc_lists
	WHERE tenant_id = $1 OR tenant_id IS NULL ORDER BY id`

func listDNCLists(ctx context.Context, q querier, tenant string) ([]controller.DNCList, error) {
	rows, err := q.Query(ctx, dncListsSQL, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing do-not-call lists: %w", translate(err))
	}
	lists, err := collectDNCLists(rows)
	if err != nil {
		return nil, fmt.Errorf("listing do-not-call lists: %w", translate(err))
	}
	return lists, nil
}

func collectDNCLists(rows pgx.Rows) ([]controller.DNCList, error) {
	lists, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.DNCList, error) {
		return scanDNCList(row)
	})
	if lists == nil {
		lists = []controller.DNCList{}
	}
	return lists, err
}

// AddDNCNumber puts an E.164 number on a list and reports whether it was new
// there. Returns ENOTFOUND for an unknown list, EINVALID if number is not
// E.164.
func (s *Store) AddDNCNumber(ctx context.Context, listID, number string) (bool, error) {
	if err := checkE164("number", number); err != nil {
		return false, fmt.Errorf("adding to do-not-call list: %w", err)
	}
	index, err := s.numberIndex(number)
	if err != nil {
		return false, fmt.Errorf("adding to do-not-call list: %w", err)
	}
	// The list row is locked first, so the count stays exact and an import
	// in progress on the list is waited for.
	var found, added bool
	err = s.db.pool.QueryRow(ctx, `
		WITH l AS MATERIALIZED (
			SELECT ref FROM dnc_lists WHERE id = $1 FOR UPDATE
		), ins AS (
			INSERT INTO dnc_index (number_key, list_ref) SELECT $2, ref FROM l
			ON CONFLICT DO NOTHING
			RETURNING 1
		), u AS (
			UPDATE dnc_lists SET entries = entries + 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)
		)
		SELECT EXISTS (SELECT 1 FROM l), EXISTS (SELECT 1 FROM ins)`, listID, dncKey(index)).Scan(&found, &added)
	if err != nil {
		return false, fmt.Errorf("adding to do-not-call list %s: %w", listID, translate(err))
	}
	if !found {
		return false, fmt.Errorf("adding to do-not-call list: %w", dncListNotFound(listID))
	}
	return added, nil
}

// RemoveDNCNumber takes a number off a list and reports whether it was
// there. Returns ENOTFOUND for an unknown list, EINVALID if number is not
// E.164.
func (s *Store) RemoveDNCNumber(ctx context.Context, listID, number string) (bool, error) {
	digits, ok := e164Digits(number)
	if !ok {
		return false, fmt.Errorf("removing from do-not-call list: %w", checkE164("number", number))
	}
	index, err := s.numberIndex(number)
	if err != nil {
		return false, fmt.Errorf("removing from do-not-call list: %w", err)
	}
	// Lock the list first, in its own statement, so that the delete's
	// snapshot sees what an import that held the list committed.
	var removed bool
	err = pgx.BeginTxFunc(ctx, s.db.pool, readCommitted, func(tx pgx.Tx) error {
		var ref int32
		err := tx.QueryRow(ctx, `SELECT ref FROM dnc_lists WHERE id = $1 FOR UPDATE`, listID).Scan(&ref)
		if errors.Is(err, pgx.ErrNoRows) {
			return dncListNotFound(listID)
		}
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			WITH del AS (
				DELETE FROM dnc_index WHERE number_key = $3 AND list_ref = $1 RETURNING 1
			), old AS (
				DELETE FROM dnc_entries WHERE number = $2 AND list_ref = $1 RETURNING 1
			), u AS (
				UPDATE dnc_lists SET entries = entries - 1 WHERE ref = $1
					AND EXISTS (SELECT 1 FROM del UNION ALL SELECT 1 FROM old)
			)
			SELECT EXISTS (SELECT 1 FROM del UNION ALL SELECT 1 FROM old)`, ref, digits, dncKey(index)).Scan(&removed)
	})
	if err != nil {
		return false, fmt.Errorf("removing from do-not-call list %s: %w", listID, translate(err))
	}
	return removed, nil
}

// SetDNCScrubbed records that a list was scrubbed against its source at at.
// Returns ENOTFOUND for an unknown list, EINVALID for a zero time.
func (s *Store) SetDNCScrubbed(ctx context.Context, listID string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("setting scrub time: %w", controller.FieldError("last_scrub_at", "is required"))
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE dnc_lists SET last_scrub_at = $2 WHERE id = $1`, listID, at)
	if err != nil {
		return fmt.Errorf("setting scrub time of do-not-call list %s: %w", listID, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("setting scrub time: %w", dncListNotFound(listID))
	}
	return nil
}

// DeleteDNCList deletes a list and its entries in one transaction, after
// any import in progress on it. It scans the entries table: an
// administrative operation, not for the hot path. Returns ENOTFOUND for an
// unknown list.
func (s *Store) DeleteDNCList(ctx context.Context, listID string) error {
	err := pgx.BeginTxFunc(ctx, s.db.pool, readCommitted, func(tx pgx.Tx) error {
		// Lock first: the deletes then run on a snapshot that sees every
		// entry committed by a writer that held the list before.
		var ref int32
		err := tx.QueryRow(ctx, `SELECT ref FROM dnc_lists WHERE id = $1 FOR UPDATE`, listID).Scan(&ref)
		if errors.Is(err, pgx.ErrNoRows) {
			return dncListNotFound(listID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM dnc_entries WHERE list_ref = $1`, ref); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM dnc_index WHERE list_ref = $1`, ref); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM dnc_lists WHERE ref = $1`, ref)
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting do-not-call list %s: %w", listID, translate(err))
	}
	return nil
}
