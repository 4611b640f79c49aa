-- Calls, their attempts (the dialling queue), their events (the CDR history),
-- idempotency keys, and the switches with their ownership leases.
-- Every customer row carries tenant_id.

-- +goose Up
CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, name) VALUES ('default', 'Default tenant');

-- One row per configured switch; owner holds the switch connection until
-- lease_until.
CREATE TABLE switches (
    name         text PRIMARY KEY,
    kind         text NOT NULL DEFAULT '',
    address      text NOT NULL DEFAULT '',
    max_sessions int NOT NULL DEFAULT 0,
    max_cps      int NOT NULL DEFAULT 0,
    owner        text,
    lease_until  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per call: its request and its outcome (the CDR).
CREATE TABLE calls (
    id              uuid PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    attempt_id      bigint,
    switch          text NOT NULL DEFAULT '', -- asked for, then the one that originated it
    to_number       text NOT NULL,
    from_number     text NOT NULL DEFAULT '',
    caller_id_name  text NOT NULL DEFAULT '',
    timeout_ms      int NOT NULL DEFAULT 0,
    variables       jsonb,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'originating',
                        'ringing', 'early', 'answered', 'completed', 'failed', 'canceled')),
    hangup_cause    text NOT NULL DEFAULT '',
    sip_status      int NOT NULL DEFAULT 0,
    billsec         int NOT NULL DEFAULT 0,
    duration        int NOT NULL DEFAULT 0,
    reconciled      bool NOT NULL DEFAULT false,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz,
    ended_at        timestamptz
);
CREATE INDEX calls_listing ON calls (tenant_id, created_at DESC, id DESC);
CREATE INDEX calls_in_flight ON calls (switch)
    WHERE state IN ('originating', 'ringing', 'early', 'answered');

-- The queue: one attempt per call. A switch owner claims due, queued attempts
-- with FOR UPDATE SKIP LOCKED.
CREATE TABLE attempts (
    id             bigserial PRIMARY KEY,
    tenant_id      text NOT NULL,
    call_id        uuid NOT NULL UNIQUE REFERENCES calls ON DELETE CASCADE,
    status         text NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'claimed', 'sent', 'done', 'canceled')),
    switch         text, -- the switch requested; NULL means any
    not_before     timestamptz NOT NULL DEFAULT now(),
    claimed_by     text,
    claimed_at     timestamptz,
    sent_at        timestamptz,
    release_reason text,
    decision       jsonb, -- the compliance decision
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_due ON attempts (not_before, id) WHERE status = 'queued';
CREATE INDEX attempts_claimed ON attempts (claimed_at) WHERE status = 'claimed';

-- Every state change or new fact of a call, with the event that caused it.
CREATE TABLE call_events (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    call_id     uuid NOT NULL REFERENCES calls ON DELETE CASCADE,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL DEFAULT '',
    sequence    bigint, -- the switch's event sequence; NULL for synthetic events
    at          timestamptz,
    event       jsonb NOT NULL, -- the whole controller.ChannelEvent
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_events_call ON call_events (call_id, id);

CREATE TABLE idempotency_keys (
    tenant_id    text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    call_id      uuid NOT NULL REFERENCES calls ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- callgate_attempts_channel names the NOTIFY channel for the attempts table of
-- a schema: callgate_attempts in public, callgate_attempts_<schema> elsewhere,
-- so that instances (and tests) in different schemas do not wake each other.
-- +goose StatementBegin
CREATE FUNCTION callgate_attempts_channel(schema text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN schema = 'public' THEN 'callgate_attempts'
                ELSE left('callgate_attempts_' || schema, 63) END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION callgate_attempts_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- PostgreSQL folds identical notifications of one transaction into one.
    PERFORM pg_notify(callgate_attempts_channel(TG_TABLE_SCHEMA), '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER attempts_queued_insert AFTER INSERT ON attempts
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION callgate_attempts_notify();
CREATE TRIGGER attempts_queued_update AFTER UPDATE OF status ON attempts
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
    EXECUTE FUNCTION callgate_attempts_notify();

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE call_events;
DROP TABLE attempts;
DROP FUNCTION callgate_attempts_notify();
DROP FUNCTION callgate_attempts_channel(text);
DROP TABLE calls;
DROP TABLE switches;
DROP TABLE tenants;
