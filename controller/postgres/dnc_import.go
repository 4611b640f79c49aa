package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// DNCImportOptions says how to load an upload into a do-not-call list.
type DNCImportOptions = controller.DNCImportOptions

// DNCImportReport is what an import did.
type DNCImportReport = controller.DNCImportReport

// DefaultImportSortRows is how many numbers an import sorts in memory by
// default: 32 MiB.
const DefaultImportSortRows = 4 << 20

// ImportDNC loads a streamed CSV upload into a do-not-call list: the first
// column holds the number (more columns are ignored), an optional header row
// is skipped, and every number goes through normalize (nil: the upload must
// already be E.164) and must come out E.164. Bad rows are reported with
// their line numbers and skipped; good rows are kept; numbers already on the
// list, or repeated, count once.
//
// It is all or nothing: the rows are copied in (binary COPY) and the list's
// entry count and scrub time updated in one transaction, so a failure or a
// crash at any point leaves the list as it was. Lookups are never blocked;
// single-number edits of the list wait while the rows move in.
//
// Returns ENOTFOUND for an unknown list; EINVALID for a line longer than
// MaxDNCLine bytes, or bad rows in a Replace upload; the reader's or the
// context's error if reading stops. The report is returned with the error
// once the upload was read.
func (s *Store) ImportDNC(ctx context.Context, listID string, r io.Reader, normalize func(string) (string, error), opts DNCImportOptions) (DNCImportReport, error) {
	rep := DNCImportReport{ListID: listID}
	// Fail fast, before reading what may be a long upload. (The transaction
	// checks again.)
	var exists bool
	if err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dnc_lists WHERE id = $1)`, listID).Scan(&exists); err != nil {
		return rep, fmt.Errorf("importing into do-not-call list %s: %w", listID, translate(err))
	}
	if !exists {
		return rep, fmt.Errorf("importing: %w", dncListNotFound(listID))
	}
	if s.pd == nil {
		return rep, fmt.Errorf("importing into do-not-call list %s: %w", listID, errNoPersonalData)
	}
	rd := newDNCReader(r, normalize, opts.MaxRowErrors)
	src := &dncCopySource{ctx: ctx, rd: rd, pd: s.pd}
	// Read what fits in memory before the transaction starts.
	sortRows := opts.SortRows
	if sortRows < 1 {
		sortRows = DefaultImportSortRows
	}
	for len(src.buf) < sortRows && src.read() {
		src.buf = append(src.buf, src.v)
	}
	if err := src.Err(); err != nil {
		return rep, fmt.Errorf("importing into do-not-call list %s: %w", listID, translate(err))
	}
	src.streaming = len(src.buf) == sortRows
	if !src.streaming {
		// Distinct numbers, then their keys in order, so the btree fills
		// in key order.
		slices.Sort(src.buf)
		src.buf = slices.Compact(src.buf)
		keys, err := digitsKeys(s.pd, src.buf)
		if err != nil {
			return rep, fmt.Errorf("importing into do-not-call list %s: %w", listID, err)
		}
		slices.Sort(keys)
		src.keys, src.buf = slices.Compact(keys), nil
	}

	tx, err := s.db.pool.BeginTx(ctx, readCommitted)
	if err != nil {
		return rep, fmt.Errorf("importing into do-not-call list %s: %w", listID, translate(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := s.importDNC(ctx, tx, listID, src, opts, &rep); err != nil {
		return rep, fmt.Errorf("importing into do-not-call list %s: %w", listID, translate(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, fmt.Errorf("importing into do-not-call list %s: committing: %w", listID, translate(err))
	}
	return rep, nil
}

func (s *Store) importDNC(ctx context.Context, tx pgx.Tx, listID string, src *dncCopySource, opts DNCImportOptions, rep *DNCImportReport) error {
	fill := func() {
		rd := src.rd
		rep.Rows, rep.Valid, rep.Invalid, rep.Errors, rep.Header = rd.rows, rd.valid, rd.invalid, rd.errors, rd.header
	}
	fill()
	// One round trip: settings for a big sort, the list, and (unless all is
	// in memory) the staging table, filled before the list is locked.
	var ref int32
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('work_mem', '256MB', true), set_config('jit', 'off', true),
		set_config('enable_hashagg', 'off', true)`)
	b.Queue(`SELECT ref FROM dnc_lists WHERE id = $1`, listID).QueryRow(func(row pgx.Row) error {
		return row.Scan(&ref)
	})
	b.Queue(`CREATE TEMP TABLE dnc_import (number_key bigint) ON COMMIT DROP`)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return dncListNotFound(listID)
		}
		return err
	}
	staged := false
	if src.streaming {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"dnc_import"}, []string{"number_key"}, src)
		if serr := src.Err(); serr != nil {
			return serr // what stopped the upload, rather than how COPY ended
		}
		if err != nil {
			return err
		}
		fill()
		staged = true
	}
	if opts.Replace && rep.Invalid > 0 {
		return controller.Errorf(controller.EINVALID,
			"%d bad rows in an upload that replaces the list: nothing was changed", rep.Invalid)
	}

	// Lock the list: its count is exact, and while it is held nobody else
	// writes to it, so an empty list needs no duplicate check.
	var entries int64
	err := tx.QueryRow(ctx, `SELECT entries FROM dnc_lists WHERE ref = $1 FOR UPDATE`, ref).Scan(&entries)
	if errors.Is(err, pgx.ErrNoRows) {
		return dncListNotFound(listID)
	}
	if err != nil {
		return err
	}
	switch {
	case entries == 0 && !staged:
		// Sorted and unique: straight into the btree, page after page.
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"dnc_index"}, []string{"number_key", "list_ref"},
			pgx.CopyFromSlice(len(src.keys), func(i int) ([]any, error) { return []any{src.keys[i], ref}, nil }))
		if err != nil {
			return err
		}
		rep.Added = n
	default:
		if !staged {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"dnc_import"}, []string{"number_key"}, src); err != nil {
				return err
			}
		}
		// Sorted, so the btree fills in key order; DISTINCT because a
		// streamed upload may repeat numbers.
		insert := `INSERT INTO dnc_index (number_key, list_ref)
			SELECT DISTINCT ON (number_key) number_key, $1::int FROM dnc_import ORDER BY number_key`
		if entries > 0 {
			insert = `INSERT INTO dnc_index (number_key, list_ref)
				SELECT DISTINCT ON (s.number_key) s.number_key, $1::int FROM dnc_import s
				WHERE NOT EXISTS (SELECT 1 FROM dnc_index e WHERE e.number_key = s.number_key AND e.list_ref = $1)
				ORDER BY s.number_key`
		}
		tag, err := tx.Exec(ctx, insert, ref)
		if err != nil {
			return err
		}
		rep.Added = tag.RowsAffected()
		if opts.Replace && entries > 0 {
			tag, err := tx.Exec(ctx, `DELETE FROM dnc_index e WHERE e.list_ref = $1
				AND NOT EXISTS (SELECT 1 FROM dnc_import s WHERE s.number_key = e.number_key)`, ref)
			if err != nil {
				return err
			}
			rep.Removed = tag.RowsAffected()
			// Entries still stored as digits (before a controller moved
			// them) are superseded: the upload was inserted in full.
			if tag, err = tx.Exec(ctx, `DELETE FROM dnc_entries WHERE list_ref = $1`, ref); err != nil {
				return err
			}
			rep.Removed += tag.RowsAffected()
		}
	}
	var scrubAt *time.Time
	err = tx.QueryRow(ctx, `
		UPDATE dnc_lists SET entries = entries + $2,
			last_scrub_at = CASE WHEN $3 THEN coalesce($4, statement_timestamp()) ELSE last_scrub_at END
		WHERE ref = $1
		RETURNING entries, last_scrub_at`, ref, rep.Added-rep.Removed, opts.Scrub, nullTime(opts.ScrubAt),
	).Scan(&rep.Entries, &scrubAt)
	if err != nil {
		return err
	}
	if scrubAt != nil {
		rep.LastScrubAt = *scrubAt
	}
	return nil
}

// dncCopySource feeds COPY the numbers read into buf, then, when streaming,
// the rest of the upload, checking the context every few thousand rows.
type dncCopySource struct {
	ctx       context.Context
	rd        *dncReader
	pd        controller.PersonalData
	buf       []int64 // numbers read ahead (streaming), or nil once keyed
	keys      []int64 // the keys (dncKey) of an upload read whole, in order
	streaming bool    // buf is full; the upload goes on

	i   int // next index in buf
	v   int64
	n   int
	row [1]any
	err error
}

// read reads the next good number from the upload into v.
func (s *dncCopySource) read() bool {
	if s.n++; s.n%4096 == 0 {
		if s.err = s.ctx.Err(); s.err != nil {
			return false
		}
	}
	var ok bool
	s.v, ok = s.rd.next()
	return ok
}

func (s *dncCopySource) Next() bool {
	if s.i < len(s.keys) {
		s.row[0] = s.keys[s.i]
		s.i++
		return true
	}
	var v int64
	switch {
	case s.i < len(s.buf):
		v = s.buf[s.i]
		s.i++
	case s.streaming && s.read():
		v = s.v
	default:
		return false
	}
	key, err := digitsKey(s.pd, v)
	if err != nil {
		s.err = err
		return false
	}
	s.row[0] = key
	return true
}

func (s *dncCopySource) Values() ([]any, error) { return s.row[:], nil }

func (s *dncCopySource) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rd.err
}
