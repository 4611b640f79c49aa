-- Routing (DESIGN 1.3): each tenant's ordered routing rules, one document
-- replaced whole under a version, and the trunk each call leaves through.

-- +goose Up
CREATE TABLE routing_rules (
    tenant_id  text PRIMARY KEY REFERENCES tenants,
    version    bigint NOT NULL CHECK (version > 0),
    rules      jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'array'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The trunk a routing rule chose; '' is the switch's default trunk.
ALTER TABLE calls ADD COLUMN trunk text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE calls DROP COLUMN trunk;
DROP TABLE routing_rules;
