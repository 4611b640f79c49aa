-- The compliance gate's data: the consent ledger, refusal locks, do-not-call
-- lists, the caller IDs each tenant owns, versioned policies and their
-- assignments, and what the gate stores on an attempt (its decision, why it
-- blocked, and the slot it reserved under a frequency cap).
--
-- Numbers are E.164 text ('+15551234567') everywhere except dnc_entries,
-- which holds national lists of tens of millions of rows and stores the
-- digits as a bigint: E.164 has at most 15 digits and never starts with 0, so
-- the digits map one to one onto integers, and the (number, list) btree is
-- about a quarter smaller than with text.

-- +goose Up

-- A call the gate blocked is stored, terminal, with its attempt.
ALTER TABLE calls DROP CONSTRAINT calls_state_check;
ALTER TABLE calls ADD CONSTRAINT calls_state_check CHECK (state IN ('queued', 'originating',
    'ringing', 'early', 'answered', 'completed', 'failed', 'canceled', 'blocked'));
ALTER TABLE attempts DROP CONSTRAINT attempts_status_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_status_check
    CHECK (status IN ('queued', 'claimed', 'sent', 'done', 'canceled', 'blocked'));

-- decision (001) holds the gate's decision when the attempt was created;
-- dial_decision the one taken again just before it was originated.
-- to_number and allowed_at are set when the gate allows the attempt, at the
-- database time the frequency-cap slot was reserved under the number's lock:
-- the caps count them with one index range scan.
ALTER TABLE attempts
    ADD COLUMN to_number       text,
    ADD COLUMN allowed_at      timestamptz,
    ADD COLUMN blocked_reasons text[],
    ADD COLUMN dial_decision   jsonb;
-- Attempts created before the gate existed count against the caps too.
UPDATE attempts a SET to_number = c.to_number, allowed_at = a.created_at
FROM calls c WHERE c.id = a.call_id;
CREATE INDEX attempts_allowed ON attempts (to_number, allowed_at) WHERE allowed_at IS NOT NULL;
-- A refusal cancels the queued calls to its number, in every tenant.
CREATE INDEX calls_queued_to ON calls (to_number) WHERE state = 'queued';

-- The consent ledger: evidence that a person agreed to be called for a
-- purpose. Rows are never deleted by the gate; revocation sets revoked_at.
-- call_id is not a foreign key: evidence outlives the call's CDR.
CREATE TABLE consents (
    id             uuid PRIMARY KEY,
    tenant_id      text NOT NULL REFERENCES tenants,
    number         text NOT NULL,
    purpose        text NOT NULL,
    source         text NOT NULL CHECK (source IN ('ivr', 'sms_link', 'api_import', 'agent')),
    proof_ref      text NOT NULL DEFAULT '',
    prompt_id      text NOT NULL DEFAULT '',
    prompt_version text NOT NULL DEFAULT '',
    digit          text NOT NULL DEFAULT '',
    call_id        uuid,
    given_at       timestamptz NOT NULL,
    expires_at     timestamptz,
    revoked_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_lookup ON consents (tenant_id, number, purpose, given_at DESC);

-- Refusal locks: enterprise-wide (every tenant), until `until` (NULL:
-- forever) unless lifted. tenant_id records who recorded it, not a scope. The
-- index serves both the gate (few rows per number, lifted ones filtered) and
-- the history of a number.
CREATE TABLE refusals (
    id         uuid PRIMARY KEY,
    number     text NOT NULL,
    source     text NOT NULL CHECK (source IN ('ivr', 'sms', 'agent', 'api')),
    call_id    uuid,
    at         timestamptz NOT NULL,
    until      timestamptz,
    lifted_at  timestamptz,
    tenant_id  text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refusals_number ON refusals (number, at DESC);

-- Do-not-call lists. tenant_id NULL: a global list (a national registry)
-- checked for every tenant. entries is kept exact by every writer, under the
-- list row's lock. ref is the compact key dnc_entries uses.
CREATE TABLE dnc_lists (
    id            text PRIMARY KEY,
    ref           int GENERATED ALWAYS AS IDENTITY UNIQUE,
    tenant_id     text REFERENCES tenants,
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('internal', 'national', 'other')),
    source        text NOT NULL DEFAULT '',
    last_scrub_at timestamptz,
    entries       bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dnc_lists_tenant ON dnc_lists (tenant_id);

-- Do-not-call numbers: one btree, number first, so the gate's lookup of a
-- number in every list is one index probe and an import's duplicate check is
-- the primary key. No foreign key: a per-row RI check would halve bulk-import
-- speed; only the store writes here, under the list's lock.
CREATE TABLE dnc_entries (
    number   bigint NOT NULL, -- E.164 digits, without the '+'
    list_ref int NOT NULL,    -- dnc_lists.ref
    PRIMARY KEY (number, list_ref)
);

-- Caller IDs a tenant registered as its own; only these may be presented.
CREATE TABLE owned_numbers (
    tenant_id  text NOT NULL REFERENCES tenants,
    number     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, number)
);

-- Compliance policies as data: every save is a new version. tenant_id NULL:
-- a preset every tenant may use. All versions of an id belong to one tenant.
CREATE TABLE policies (
    id         text NOT NULL,
    version    int NOT NULL CHECK (version > 0),
    tenant_id  text REFERENCES tenants,
    name       text NOT NULL DEFAULT '',
    body       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);

-- Which policy governs a tenant's campaign; campaign_id '' is the tenant's
-- default. The latest version of the policy applies.
CREATE TABLE policy_assignments (
    tenant_id   text NOT NULL REFERENCES tenants,
    campaign_id text NOT NULL DEFAULT '',
    policy_id   text NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, campaign_id)
);

-- +goose Down
DROP TABLE policy_assignments;
DROP TABLE policies;
DROP TABLE owned_numbers;
DROP TABLE dnc_entries;
DROP TABLE dnc_lists;
DROP TABLE refusals;
DROP TABLE consents;
DROP INDEX calls_queued_to;
DROP INDEX attempts_allowed;
ALTER TABLE attempts DROP COLUMN to_number, DROP COLUMN allowed_at,
    DROP COLUMN blocked_reasons, DROP COLUMN dial_decision;
UPDATE attempts SET status = 'canceled' WHERE status = 'blocked';
UPDATE calls SET state = 'canceled' WHERE state = 'blocked';
ALTER TABLE attempts DROP CONSTRAINT attempts_status_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_status_check
    CHECK (status IN ('queued', 'claimed', 'sent', 'done', 'canceled'));
ALTER TABLE calls DROP CONSTRAINT calls_state_check;
ALTER TABLE calls ADD CONSTRAINT calls_state_check CHECK (state IN ('queued', 'originating',
    'ringing', 'early', 'answered', 'completed', 'failed', 'canceled'));
