-- API tokens and the agent a call is assigned to.
--
-- A token is a role in one tenant (and, for the agent role, one agent). Only
-- the SHA-256 of its secret is stored: the secret is shown once, when the
-- token is created, and cannot be recovered. Revocation and expiry take
-- effect on the next request (the API looks the token up every time).

-- +goose Up
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants,
    role         text NOT NULL CHECK (role IN ('admin', 'agent', 'qa', 'auditor')),
    agent_id     text,
    name         text NOT NULL DEFAULT '',
    secret_hash  bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    -- an agent token names its agent; no other role does
    CHECK ((role = 'agent') = (agent_id IS NOT NULL AND agent_id <> ''))
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, created_at DESC);

-- The agent whose token placed the call; agents see only these calls.
ALTER TABLE calls ADD COLUMN agent_id text;
CREATE INDEX calls_agent ON calls (tenant_id, agent_id) WHERE agent_id IS NOT NULL;

-- +goose Down
DROP INDEX calls_agent;
ALTER TABLE calls DROP COLUMN agent_id;
DROP TABLE api_tokens;
