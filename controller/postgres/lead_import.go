package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// InsertLeads adds leads to a list in one transaction, skipping numbers
// the list already has or that repeat in leads. Returns how many were
// added; ENOTFOUND for an unknown list.
//
// With fresh set (the caller believes no lead has any of these numbers:
// the list was empty when its import began and the caller removed repeats)
// the rows are copied straight into the table (binary COPY), the fastest
// path; if a number is there after all (another upload into the same list
// meanwhile), that transaction rolls back and the batch takes the general
// path: COPY into a temporary table, then one INSERT that skips conflicts.
func (s *Store) InsertLeads(ctx context.Context, tenant, listID string, leads []controller.Lead, fresh bool) (int, error) {
	if len(leads) == 0 {
		return 0, nil
	}
	index, sealed, details, err := s.sealLeads(leads)
	if err != nil {
		return 0, fmt.Errorf("adding leads to list %s: %w", listID, err)
	}
	if fresh {
		n, err := s.copyLeads(ctx, tenant, listID, leads, index, sealed, details)
		if err == nil {
			return n, nil
		}
		if controller.ErrorCode(err) != controller.ECONFLICT {
			return 0, fmt.Errorf("adding leads to list %s: %w", listID, err)
		}
	}
	n := 0
	err = pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE lead_rows (phone_index bytea, phone_sealed bytea,
			personal_sealed bytea, time_zone text, tags jsonb) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"lead_rows"},
			[]string{"phone_index", "phone_sealed", "personal_sealed", "time_zone", "tags"},
			leadSource(leads, index, sealed, details, nil)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO leads (tenant_id, list_id, phone_index, phone_sealed, personal_sealed, time_zone, tags)
			SELECT $1, $2, phone_index, phone_sealed, personal_sealed, time_zone, tags FROM lead_rows
			ON CONFLICT (list_id, phone_index) DO NOTHING`, tenant, listID)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("adding leads to list %s: %w", listID, translate(err))
	}
	return n, nil
}

// copyLeads copies leads straight into the list. Returns ECONFLICT (and
// writes nothing) if a number is already there.
func (s *Store) copyLeads(ctx context.Context, tenant, listID string, leads []controller.Lead, index, sealed, details [][]byte) (int, error) {
	// As 16 bytes, which COPY encodes as they are (a string would go
	// through pgx's text fallback on every row).
	listUUID, err := uuid.Parse(listID)
	if err != nil {
		return 0, controller.Errorf(controller.ENOTFOUND, "lead list %s not found", listID)
	}
	n := 0
	err = pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		c, err := tx.CopyFrom(ctx, pgx.Identifier{"leads"},
			[]string{"phone_index", "phone_sealed", "personal_sealed", "time_zone", "tags", "tenant_id", "list_id"},
			leadSource(leads, index, sealed, details, []any{tenant, [16]byte(listUUID)}))
		n = int(c)
		return err
	})
	return n, translate(err)
}

// sealLeads returns the blind index and the sealed form of each lead's
// phone, and its name and custom fields sealed (nil if it has none), on
// every core (a million-row import seals a million numbers).
func (s *Store) sealLeads(leads []controller.Lead) (index, sealed, details [][]byte, err error) {
	if s.pd == nil {
		return nil, nil, nil, errNoPersonalData
	}
	n := len(leads)
	index, sealed, details = make([][]byte, n), make([][]byte, n), make([][]byte, n)
	err = onEveryCore(n, 256, func(i int) error {
		var err error
		if index[i], sealed[i], err = sealNumber(s.pd, leads[i].Phone); err != nil {
			return err
		}
		fields, err := jsonMap(leads[i].Fields)
		if err == nil {
			details[i], err = sealLeadDetails(s.pd, leads[i].Name, fields)
		}
		return err
	})
	return index, sealed, details, err
}

// leadSource feeds leads to COPY, each row its phone's index and sealed
// form, its sealed name and fields, its zone and tags, then extra.
func leadSource(leads []controller.Lead, index, sealed, details [][]byte, extra []any) pgx.CopyFromSource {
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if i >= len(leads) {
			return nil, nil
		}
		l, idx, sld, det := leads[i], index[i], sealed[i], details[i]
		i++
		tags, err := jsonMap(l.Tags)
		if err != nil {
			return nil, err
		}
		return append([]any{idx, sld, det, l.TimeZone, tags}, extra...), nil
	})
}

// jsonMap encodes a flat string map as a JSON object with sorted keys:
// json.Marshal's output, without its reflection (a million-row import calls
// this twice a row).
func jsonMap(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	keys := make([]string, 0, len(m))
	size := 2
	for k, v := range m {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// importStale is how long a running import may go without a heartbeat
// before it is reported as interrupted.
const importStale = 2 * time.Minute

// StartLeadImport records a new, running import into a list. Returns
// ENOTFOUND for a list the tenant does not have.
func (s *Store) StartLeadImport(ctx context.Context, tenant, listID string) (controller.LeadImport, error) {
	if _, err := s.GetLeadList(ctx, tenant, listID); err != nil {
		return controller.LeadImport{}, err
	}
	im := controller.LeadImport{ID: uuid.NewString(), TenantID: tenant, ListID: listID, State: "running"}
	err := s.db.pool.QueryRow(ctx, `INSERT INTO lead_imports (id, tenant_id, list_id) VALUES ($1, $2, $3)
		RETURNING started_at`, im.ID, tenant, listID).Scan(&im.StartedAt)
	if err != nil {
		return im, fmt.Errorf("starting lead import: %w", translate(err))
	}
	return im, nil
}

// SaveLeadImport writes an import's counters and rejects, renewing its
// heartbeat; with a final state (done, failed) it also ends it.
func (s *Store) SaveLeadImport(ctx context.Context, im controller.LeadImport) error {
	rejects := im.Rejects
	if rejects == nil {
		rejects = []controller.LeadReject{}
	}
	raw, err := json.Marshal(rejects)
	if err != nil {
		return fmt.Errorf("encoding rejects: %w", err)
	}
	_, err = s.db.pool.Exec(ctx, `UPDATE lead_imports SET state = $2, rows_read = $3, imported = $4,
		duplicates = $5, rejected = $6, rejects = $7, error = $8, heartbeat = now(),
		finished_at = CASE WHEN $2 <> 'running' THEN now() END
		WHERE id = $1 AND state = 'running'`, im.ID, im.State, im.Rows, im.Imported, im.Duplicates,
		im.Rejected, raw, im.Error)
	if err != nil {
		return fmt.Errorf("saving lead import %s: %w", im.ID, translate(err))
	}
	return nil
}

// GetLeadImport returns an import's progress; a running import whose
// heartbeat stopped is reported failed (interrupted). Returns ENOTFOUND.
func (s *Store) GetLeadImport(ctx context.Context, tenant, id string) (controller.LeadImport, error) {
	im := controller.LeadImport{ID: id, TenantID: tenant}
	if _, err := uuid.Parse(id); err != nil {
		return im, controller.Errorf(controller.ENOTFOUND, "lead import %s not found", id)
	}
	var (
		raw   []byte
		stale bool
	)
	err := s.db.pool.QueryRow(ctx, `SELECT list_id::text, state, rows_read, imported, duplicates, rejected,
		rejects, error, started_at, finished_at, state = 'running' AND heartbeat < now() - $3::interval
		FROM lead_imports WHERE id = $1 AND tenant_id = $2`, id, tenant, importStale).Scan(
		&im.ListID, &im.State, &im.Rows, &im.Imported, &im.Duplicates, &im.Rejected, &raw, &im.Error,
		&im.StartedAt, &im.FinishedAt, &stale)
	if errors.Is(err, pgx.ErrNoRows) {
		return im, controller.Errorf(controller.ENOTFOUND, "lead import %s not found", id)
	}
	if err != nil {
		return im, fmt.Errorf("reading lead import %s: %w", id, translate(err))
	}
	if err := json.Unmarshal(raw, &im.Rejects); err != nil {
		return im, fmt.Errorf("decoding rejects of import %s: %w", id, err)
	}
	if stale {
		im.State, im.Error = "failed", "interrupted: the controller stopped while importing; "+
			"upload the file again (rows already imported are skipped as duplicates)"
	}
	return im, nil
}
