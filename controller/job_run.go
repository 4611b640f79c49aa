package controller

import (
	"context"
	"time"
)

// JobStatus is where one firing of a scheduled job stands.
type JobStatus string

// A firing is claimed running by one controller and ends ok, error or
// skipped. Interrupted is never stored: it is how a running firing whose
// heartbeat stopped (its controller died) is reported. An interrupted firing
// is not run again by anyone: a purge or an export must not run twice
// silently; the next firing runs as usual.
const (
	JobRunning     JobStatus = "running"
	JobOK          JobStatus = "ok"
	JobError       JobStatus = "error"
	JobSkipped     JobStatus = "skipped" // an earlier run of the job was still going
	JobInterrupted JobStatus = "interrupted"
)

// JobHeartbeatInterval is how often the controller running a job renews its
// run's heartbeat; a running firing whose heartbeat is older than JobRunStale
// is reported interrupted.
const (
	JobHeartbeatInterval = 30 * time.Second
	JobRunStale          = 4 * JobHeartbeatInterval
)

// JobRun is one firing of a scheduled job (an off-peak export, the retention
// purge…), claimed by exactly one controller.
type JobRun struct {
	Job        string        `json:"job"`
	FireAt     time.Time     `json:"fire_at"` // the scheduled time, to the minute
	Owner      string        `json:"owner"`   // the controller's instance ID
	Status     JobStatus     `json:"status"`
	Error      string        `json:"error,omitempty"` // the job's error, or why it was skipped
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt *time.Time    `json:"finished_at,omitempty"`
	Duration   time.Duration `json:"duration"`
}

// JobRunStore records which controller runs each firing of a scheduled job.
type JobRunStore interface {
	// ClaimJobRun records that owner runs job's firing at fireAt, unless
	// another controller recorded that firing first, and reports whether
	// owner won. A firing that comes while an earlier run of the job is
	// still going (its heartbeat younger than JobRunStale) is recorded as
	// skipped and not won. When the firing was already recorded, run is the
	// zero JobRun.
	ClaimJobRun(ctx context.Context, job string, fireAt time.Time, owner string) (run JobRun, won bool, err error)
	// RenewJobRun renews the heartbeat of owner's running firing. Returns
	// ENOTFOUND if owner does not hold that running firing.
	RenewJobRun(ctx context.Context, job string, fireAt time.Time, owner string) error
	// FinishJobRun records r's outcome (Status ok or error, Error,
	// Duration) on its running firing, held by r.Owner. Returns ENOTFOUND
	// if r.Owner does not hold that running firing, EINVALID for another
	// status.
	FinishJobRun(ctx context.Context, r JobRun) error
}
