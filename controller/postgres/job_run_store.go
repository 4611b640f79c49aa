package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.JobRunStore = (*Store)(nil)

// ClaimJobRun records that owner runs job's firing at fireAt (truncated to
// the minute) and reports whether owner won: of several controllers claiming
// one firing, exactly one inserts the row; the others' inserts do nothing
// and they get the zero JobRun. A firing that comes while an earlier run of
// the job is still going (running, its heartbeat younger than
// controller.JobRunStale) is recorded as skipped, naming that run, and not
// won. Returns EINVALID for an empty job or owner.
func (s *Store) ClaimJobRun(ctx context.Context, job string, fireAt time.Time, owner string) (controller.JobRun, bool, error) {
	fireAt = fireAt.Truncate(time.Minute)
	run := controller.JobRun{Job: job, FireAt: fireAt, Owner: owner}
	if job == "" || owner == "" {
		return controller.JobRun{}, false, controller.Errorf(controller.EINVALID, "a job run needs a job and an owner")
	}
	var dur int64
	err := s.db.pool.QueryRow(ctx, `
		WITH live AS (
			SELECT fire_at FROM job_runs
			WHERE job = $1 AND fire_at <> $2 AND status = 'running'
				AND heartbeat_at >= now() - $4 * interval '1 microsecond'
			ORDER BY fire_at DESC LIMIT 1
		)
		INSERT INTO job_runs (job, fire_at, owner, status, error, finished_at)
		SELECT $1, $2, $3,
			CASE WHEN l.fire_at IS NULL THEN 'running' ELSE 'skipped' END,
			CASE WHEN l.fire_at IS NULL THEN '' ELSE 'the run fired at '
				|| to_char(l.fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"') || ' was still running' END,
			CASE WHEN l.fire_at IS NOT NULL THEN now() END
		FROM (SELECT) AS one LEFT JOIN live l ON true
		ON CONFLICT (job, fire_at) DO NOTHING
		RETURNING status, error, started_at, finished_at, duration_ms`,
		job, fireAt, owner, controller.JobRunStale.Microseconds(),
	).Scan(&run.Status, &run.Error, &run.StartedAt, &run.FinishedAt, &dur)
	if errors.Is(err, pgx.ErrNoRows) {
		return controller.JobRun{}, false, nil // another controller's
	}
	if err != nil {
		return controller.JobRun{}, false, fmt.Errorf("claiming job %s fired at %s: %w", job, fireAt.UTC().Format(time.RFC3339), translate(err))
	}
	run.Duration = time.Duration(dur) * time.Millisecond
	return run, run.Status == controller.JobRunning, nil
}

// RenewJobRun renews the heartbeat of owner's running firing of job at
// fireAt. Returns ENOTFOUND if owner does not hold that running firing.
func (s *Store) RenewJobRun(ctx context.Context, job string, fireAt time.Time, owner string) error {
	fireAt = fireAt.Truncate(time.Minute)
	tag, err := s.db.pool.Exec(ctx, `UPDATE job_runs SET heartbeat_at = now()
		WHERE job = $1 AND fire_at = $2 AND owner = $3 AND status = 'running'`, job, fireAt, owner)
	if err != nil {
		return fmt.Errorf("renewing job %s fired at %s: %w", job, fireAt.UTC().Format(time.RFC3339), translate(err))
	}
	if tag.RowsAffected() == 0 {
		return controller.Errorf(controller.ENOTFOUND, "job %s fired at %s is not running under %s",
			job, fireAt.UTC().Format(time.RFC3339), owner)
	}
	return nil
}

// FinishJobRun records r's outcome — Status ok or error, Error, Duration —
// and the database's now as its finish time, on the running firing r.Owner
// holds. Returns ENOTFOUND if r.Owner does not hold that running firing,
// EINVALID for another status.
func (s *Store) FinishJobRun(ctx context.Context, r controller.JobRun) error {
	if r.Status != controller.JobOK && r.Status != controller.JobError {
		return controller.Errorf(controller.EINVALID, "a job run finishes ok or error, not %q", r.Status)
	}
	fireAt := r.FireAt.Truncate(time.Minute)
	tag, err := s.db.pool.Exec(ctx, `UPDATE job_runs
		SET status = $4, error = $5, duration_ms = $6, finished_at = now(), heartbeat_at = now()
		WHERE job = $1 AND fire_at = $2 AND owner = $3 AND status = 'running'`,
		r.Job, fireAt, r.Owner, r.Status, r.Error, r.Duration.Milliseconds())
	if err != nil {
		return fmt.Errorf("finishing job %s fired at %s: %w", r.Job, fireAt.UTC().Format(time.RFC3339), translate(err))
	}
	if tag.RowsAffected() == 0 {
		return controller.Errorf(controller.ENOTFOUND, "job %s fired at %s is not running under %s",
			r.Job, fireAt.UTC().Format(time.RFC3339), r.Owner)
	}
	return nil
}

// ListJobRuns returns the newest firings, of job or of every job if job is
// empty, newest first: at most limit (1..1000; 0 means 50). A running firing
// whose heartbeat is older than controller.JobRunStale is reported
// interrupted. Returns EINVALID for a limit out of range.
func (s *Store) ListJobRuns(ctx context.Context, job string, limit int) ([]controller.JobRun, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 1000 {
		return nil, controller.FieldError("limit", "%d is not between 1 and 1000", limit)
	}
	rows, err := s.db.pool.Query(ctx, `
		SELECT job, fire_at, owner,
			CASE WHEN status = 'running' AND heartbeat_at < now() - $2 * interval '1 microsecond'
				THEN 'interrupted' ELSE status END,
			error, started_at, finished_at, duration_ms
		FROM job_runs WHERE $1 = '' OR job = $1
		ORDER BY fire_at DESC, job LIMIT $3`, job, controller.JobRunStale.Microseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("listing job runs: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.JobRun, error) {
		var (
			r   controller.JobRun
			dur int64
		)
		err := row.Scan(&r.Job, &r.FireAt, &r.Owner, &r.Status, &r.Error, &r.StartedAt, &r.FinishedAt, &dur)
		r.Duration = time.Duration(dur) * time.Millisecond
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing job runs: %w", translate(err))
	}
	return list, nil
}
