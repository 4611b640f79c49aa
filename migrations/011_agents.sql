-- Agents: the people campaigns connect answered calls to, with their state
-- and the time they spent in each (for utilisation).

-- +goose Up
CREATE TABLE agents (
    id                uuid PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants,
    name              text NOT NULL,
    endpoint          text NOT NULL,
    skills            text[] NOT NULL DEFAULT '{}',
    campaign_ids      uuid[] NOT NULL DEFAULT '{}', -- empty: every campaign
    wrap_seconds      int NOT NULL DEFAULT 30,
    state             text NOT NULL DEFAULT 'offline'
                          CHECK (state IN ('offline', 'available', 'on_call', 'wrap_up', 'paused')),
    state_since       timestamptz NOT NULL DEFAULT now(),
    call_id           uuid,
    calls             int NOT NULL DEFAULT 0,
    on_call_seconds   double precision NOT NULL DEFAULT 0,
    wrap_up_seconds   double precision NOT NULL DEFAULT 0,
    logged_in_seconds double precision NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_available ON agents (tenant_id, state_since) WHERE state = 'available';
CREATE INDEX agents_call ON agents (call_id) WHERE call_id IS NOT NULL;

-- +goose Down
DROP TABLE agents;
