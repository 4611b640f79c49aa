-- Every controller start looks for rows still holding a number (or a lead's
-- name and fields, or a decision's number) in the clear, to seal them
-- (SealClearNumbers). Without these partial indexes each start scanned
-- calls, attempts and leads whole; with them, once everything is sealed,
-- the look is an empty index. New rows never enter them.

-- +goose Up
CREATE INDEX calls_to_clear ON calls (to_number) WHERE to_number IS NOT NULL;
CREATE INDEX attempts_to_clear ON attempts (to_number) WHERE to_number IS NOT NULL;
CREATE INDEX attempts_decision_clear ON attempts (id)
    WHERE decision ? 'number' OR dial_decision ? 'number';
CREATE INDEX leads_details_clear ON leads (id)
    WHERE personal_sealed IS NULL AND (name <> '' OR fields <> '{}'::jsonb);

-- +goose Down
DROP INDEX leads_details_clear;
DROP INDEX attempts_decision_clear;
DROP INDEX attempts_to_clear;
DROP INDEX calls_to_clear;
