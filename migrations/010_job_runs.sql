-- Scheduled jobs (the retention purge; exports and the transcription
-- hand-off when they exist): one row per firing. Every controller runs the
-- same schedule; the first to insert (job, fire_at) runs that firing, the
-- others' inserts do nothing. A running row whose heartbeat stopped was
-- interrupted (its controller died) and is reported so, never rerun.

-- +goose Up
CREATE TABLE job_runs (
    job          text NOT NULL,
    fire_at      timestamptz NOT NULL, -- the scheduled time, to the minute
    owner        text NOT NULL,        -- the controller's instance ID
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'error', 'skipped')),
    error        text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    duration_ms  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (job, fire_at),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
-- `callgate jobs list` reads the newest firings of all jobs.
CREATE INDEX job_runs_recent ON job_runs (fire_at DESC);

-- +goose Down
DROP TABLE job_runs;
