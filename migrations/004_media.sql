-- IVR media: versioned flows and prompts, the path each call took through
-- its flow, and call recordings with their wrapped data keys.
--
-- Flows and prompts are never updated: every save adds a version, and calls
-- and consent evidence name the version they used. Flow IDs and prompt names
-- are [a-z0-9][a-z0-9_-]{0,62}, so "<name>.v<version>" is unambiguous and
-- safe as a file name.

-- +goose Up
CREATE TABLE flows (
    tenant_id  text NOT NULL REFERENCES tenants,
    id         text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    version    int NOT NULL CHECK (version > 0),
    name       text NOT NULL DEFAULT '',
    body       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id, version)
);

CREATE TABLE prompts (
    tenant_id   text NOT NULL REFERENCES tenants,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    version     int NOT NULL CHECK (version > 0),
    text        text NOT NULL DEFAULT '',
    language    text NOT NULL DEFAULT '',
    duration_ms bigint NOT NULL DEFAULT 0,
    size        bigint NOT NULL DEFAULT 0,
    sha256      text NOT NULL DEFAULT '',
    file        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name, version)
);

-- The path one call took through its flow (one run per call, replaced as it
-- progresses). Not a foreign key to flows: versions are never deleted, and
-- the run is part of the call's record.
CREATE TABLE flow_runs (
    call_id      uuid PRIMARY KEY REFERENCES calls ON DELETE CASCADE,
    tenant_id    text NOT NULL REFERENCES tenants,
    flow_id      text NOT NULL,
    flow_version int NOT NULL,
    outcome      text NOT NULL,
    path         jsonb NOT NULL DEFAULT '[]',
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);

-- Call recordings. The audio is encrypted under a per-recording data key;
-- wrapped_key is that key wrapped by the master key key_id. Shredding
-- destroys wrapped_key, after which nobody can decrypt the recording. No
-- cascade from calls: a call with recordings cannot be deleted by accident.
CREATE TABLE recordings (
    id           uuid PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants,
    call_id      uuid NOT NULL REFERENCES calls,
    status       text NOT NULL DEFAULT 'recording'
                     CHECK (status IN ('recording', 'stored', 'failed', 'shredded')),
    spool_path   text NOT NULL DEFAULT '',
    blob_key     text NOT NULL DEFAULT '',
    key_id       text NOT NULL DEFAULT '',
    wrapped_key  bytea,
    sha256       text NOT NULL DEFAULT '',
    size         bigint NOT NULL DEFAULT 0,
    duration_ms  bigint NOT NULL DEFAULT 0,
    channels     int NOT NULL DEFAULT 0,
    consent_id   text NOT NULL DEFAULT '',
    error        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    stored_at    timestamptz,
    retain_until timestamptz,
    shredded_at  timestamptz,
    CONSTRAINT recordings_shredded_key CHECK (status <> 'shredded' OR wrapped_key IS NULL),
    CONSTRAINT recordings_stored_key CHECK (status <> 'stored' OR wrapped_key IS NOT NULL)
);
CREATE INDEX recordings_call ON recordings (call_id);
CREATE INDEX recordings_active ON recordings (created_at, id) WHERE status = 'recording';
CREATE INDEX recordings_expiry ON recordings (retain_until) WHERE status = 'stored';

-- The flow a call runs (its newest version when the call starts).
ALTER TABLE calls ADD COLUMN flow_id text;

-- +goose Down
ALTER TABLE calls DROP COLUMN flow_id;
DROP TABLE recordings;
DROP TABLE flow_runs;
DROP TABLE prompts;
DROP TABLE flows;
