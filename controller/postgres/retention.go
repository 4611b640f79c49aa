package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PurgeReport says what a retention purge removed, or would remove.
type PurgeReport struct {
	DryRun          bool      `json:"dry_run"`
	CallsBefore     time.Time `json:"calls_ended_before"`
	EvidenceBefore  time.Time `json:"evidence_ended_before"`
	Calls           int64     `json:"calls"`
	CallEvents      int64     `json:"call_events"`
	Attempts        int64     `json:"attempts"`
	FlowRuns        int64     `json:"flow_runs"`
	IdempotencyKeys int64     `json:"idempotency_keys"`
	Recordings      int64     `json:"recordings"`
	Consents        int64     `json:"consents"`
	Refusals        int64     `json:"refusals"`
}

// PurgeExpired deletes, in one transaction, the call data of calls that
// ended before callsBefore — the call, its events, attempt (with its
// decisions), flow run and idempotency key, and its recordings' rows, which
// must already be shredded (a call with a recording still stored is kept
// until the recording's own retention has run) — and the consent evidence
// and refusal locks that stopped being in force (revoked, expired, lifted or
// ended) before evidenceBefore. Consents and refusals still in force are
// never deleted, whatever their age. With dryRun the same statements run and
// are rolled back, so a dry run reports exactly what the purge would remove.
func (s *Store) PurgeExpired(ctx context.Context, callsBefore, evidenceBefore time.Time, dryRun bool) (PurgeReport, error) {
	rep := PurgeReport{DryRun: dryRun, CallsBefore: callsBefore, EvidenceBefore: evidenceBefore}
	tx, err := s.db.pool.BeginTx(ctx, readCommitted)
	if err != nil {
		return rep, fmt.Errorf("purging: %w", translate(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	// Its own round trip: the batch below is prepared before it runs, and
	// its statements name this table.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE purge_calls ON COMMIT DROP AS
		SELECT c.id FROM calls c
		WHERE c.ended_at < $1 AND c.state IN ('completed', 'failed', 'canceled', 'blocked')
			AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = c.id AND r.status IN ('recording', 'stored'))`,
		callsBefore); err != nil {
		return rep, fmt.Errorf("purging: selecting calls: %w", translate(err))
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT
		(SELECT count(*) FROM purge_calls),
		(SELECT count(*) FROM call_events e JOIN purge_calls p ON p.id = e.call_id),
		(SELECT count(*) FROM attempts a JOIN purge_calls p ON p.id = a.call_id),
		(SELECT count(*) FROM flow_runs f JOIN purge_calls p ON p.id = f.call_id),
		(SELECT count(*) FROM idempotency_keys k JOIN purge_calls p ON p.id = k.call_id)`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&rep.Calls, &rep.CallEvents, &rep.Attempts, &rep.FlowRuns, &rep.IdempotencyKeys)
	})
	// Recordings are not cascaded from calls (on purpose): their rows go
	// first, and only shredded or failed ones are left for these calls.
	b.Queue(`DELETE FROM recordings r USING purge_calls p WHERE r.call_id = p.id`).Exec(func(ct pgconn.CommandTag) error {
		rep.Recordings = ct.RowsAffected()
		return nil
	})
	b.Queue(`DELETE FROM calls c USING purge_calls p WHERE c.id = p.id`) // cascades to events, attempts, runs, keys
	b.Queue(`DELETE FROM consents WHERE coalesce(revoked_at, expires_at) < least($1::timestamptz, now())`,
		evidenceBefore).Exec(func(ct pgconn.CommandTag) error {
		rep.Consents = ct.RowsAffected()
		return nil
	})
	b.Queue(`DELETE FROM refusals WHERE coalesce(lifted_at, until) < least($1::timestamptz, now())`,
		evidenceBefore).Exec(func(ct pgconn.CommandTag) error {
		rep.Refusals = ct.RowsAffected()
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return rep, fmt.Errorf("purging: %w", translate(err))
	}
	if dryRun {
		return rep, nil // rolled back by the deferred Rollback
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, fmt.Errorf("purging: committing: %w", translate(err))
	}
	return rep, nil
}
