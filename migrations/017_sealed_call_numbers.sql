-- The callee numbers of calls, attempts, leads and campaign leads sealed at
-- rest, as migration 016 did for consents and refusals: <col>_sealed holds
-- the number encrypted (controller/pii), <col>_index its blind index, which
-- is how a number is looked up, counted or deduplicated. An attempt keeps
-- only the index (it counts towards the caps; its call holds the number).
--
-- Rows written before keep their clear number until a controller starts and
-- seals them (SealClearNumbers), before it dials; lookups also match the
-- clear value meanwhile. The caller ID (calls.from_number) is the tenant's
-- own published number and stays in the clear.

-- +goose Up
ALTER TABLE calls
    ALTER COLUMN to_number DROP NOT NULL,
    ADD COLUMN to_index  bytea,
    ADD COLUMN to_sealed bytea,
    ADD CONSTRAINT calls_to_stored CHECK (
        (to_number IS NOT NULL AND to_index IS NULL AND to_sealed IS NULL) OR
        (to_number IS NULL AND to_index IS NOT NULL AND to_sealed IS NOT NULL));
CREATE INDEX calls_queued_to_index ON calls (to_index) WHERE state = 'queued' AND to_index IS NOT NULL;
-- The clear columns' indexes now cover only the rows not sealed yet.
DROP INDEX calls_queued_to;
CREATE INDEX calls_queued_to ON calls (to_number) WHERE state = 'queued' AND to_number IS NOT NULL;

ALTER TABLE attempts ADD COLUMN to_index bytea;
CREATE INDEX attempts_allowed_index ON attempts (to_index, allowed_at) WHERE allowed_at IS NOT NULL AND to_index IS NOT NULL;
DROP INDEX attempts_allowed;
CREATE INDEX attempts_allowed ON attempts (to_number, allowed_at) WHERE allowed_at IS NOT NULL AND to_number IS NOT NULL;

ALTER TABLE leads
    ALTER COLUMN phone DROP NOT NULL,
    ADD COLUMN phone_index  bytea,
    ADD COLUMN phone_sealed bytea,
    ADD CONSTRAINT leads_phone_stored CHECK (
        (phone IS NOT NULL AND phone_index IS NULL AND phone_sealed IS NULL) OR
        (phone IS NULL AND phone_index IS NOT NULL AND phone_sealed IS NOT NULL)),
    ADD CONSTRAINT leads_list_phone_index UNIQUE (list_id, phone_index),
    DROP CONSTRAINT leads_list_id_phone_key;
CREATE UNIQUE INDEX leads_list_phone_clear ON leads (list_id, phone) WHERE phone IS NOT NULL;

ALTER TABLE campaign_leads
    ALTER COLUMN phone DROP NOT NULL,
    ADD COLUMN phone_index  bytea,
    ADD COLUMN phone_sealed bytea,
    ADD CONSTRAINT campaign_leads_phone_stored CHECK (
        (phone IS NOT NULL AND phone_index IS NULL AND phone_sealed IS NULL) OR
        (phone IS NULL AND phone_index IS NOT NULL AND phone_sealed IS NOT NULL)),
    ADD CONSTRAINT campaign_leads_phone_index UNIQUE (campaign_id, phone_index),
    DROP CONSTRAINT campaign_leads_campaign_id_phone_key;
CREATE UNIQUE INDEX campaign_leads_phone_clear ON campaign_leads (campaign_id, phone) WHERE phone IS NOT NULL;

-- +goose Down
-- Sealed numbers cannot be opened in SQL: going back would lose them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM calls WHERE to_number IS NULL) OR EXISTS (SELECT 1 FROM leads WHERE phone IS NULL)
        OR EXISTS (SELECT 1 FROM campaign_leads WHERE phone IS NULL) THEN
        RAISE EXCEPTION 'calls or leads hold sealed numbers: migrating down would lose them';
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX campaign_leads_phone_clear;
ALTER TABLE campaign_leads DROP CONSTRAINT campaign_leads_phone_index, DROP CONSTRAINT campaign_leads_phone_stored,
    DROP COLUMN phone_sealed, DROP COLUMN phone_index, ALTER COLUMN phone SET NOT NULL,
    ADD CONSTRAINT campaign_leads_campaign_id_phone_key UNIQUE (campaign_id, phone);
DROP INDEX leads_list_phone_clear;
ALTER TABLE leads DROP CONSTRAINT leads_list_phone_index, DROP CONSTRAINT leads_phone_stored,
    DROP COLUMN phone_sealed, DROP COLUMN phone_index, ALTER COLUMN phone SET NOT NULL,
    ADD CONSTRAINT leads_list_id_phone_key UNIQUE (list_id, phone);
DROP INDEX attempts_allowed;
CREATE INDEX attempts_allowed ON attempts (to_number, allowed_at) WHERE allowed_at IS NOT NULL;
DROP INDEX attempts_allowed_index;
ALTER TABLE attempts DROP COLUMN to_index;
DROP INDEX calls_queued_to;
CREATE INDEX calls_queued_to ON calls (to_number) WHERE state = 'queued';
DROP INDEX calls_queued_to_index;
ALTER TABLE calls DROP CONSTRAINT calls_to_stored, DROP COLUMN to_sealed, DROP COLUMN to_index,
    ALTER COLUMN to_number SET NOT NULL;
