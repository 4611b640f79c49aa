-- Tags and a disposition on every call: what QA, agents and flows record
-- about it (e.g. {"interest": "high"}, "callback").

-- +goose Up
ALTER TABLE calls ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
ALTER TABLE calls ADD COLUMN disposition text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE calls DROP COLUMN disposition;
ALTER TABLE calls DROP COLUMN tags;
