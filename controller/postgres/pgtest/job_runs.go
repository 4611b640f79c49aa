package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

// KillJobRun plays the death of the controller running job's firing at
// fireAt: its heartbeat is moved back past controller.JobRunStale, as if it
// had stopped then. Fails the test if no such running firing exists.
func KillJobRun(t testing.TB, db *postgres.DB, job string, fireAt time.Time) {
	t.Helper()
	tag, err := db.Pool().Exec(context.Background(), `UPDATE job_runs
		SET heartbeat_at = heartbeat_at - $3 * interval '1 microsecond'
		WHERE job = $1 AND fire_at = $2 AND status = 'running'`,
		job, fireAt.Truncate(time.Minute), (controller.JobRunStale + time.Minute).Microseconds())
	if err != nil {
		t.Fatalf("pgtest: ageing job run %s: %v", job, err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("pgtest: no running firing of job %s at %s", job, fireAt)
	}
}
