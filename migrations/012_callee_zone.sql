-- A callee's own time zone on a call (a campaign lead's), which the
-- compliance gate checks calling hours in as well as the number's.

-- +goose Up
ALTER TABLE calls ADD COLUMN callee_zone text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE calls DROP COLUMN callee_zone;
