-- Phone numbers of consents and refusals sealed at rest.
--
-- A number is stored as number_sealed (AES-256-GCM under a key derived from
-- the controller's keyring, see controller/pii) and found through
-- number_index (HMAC-SHA256 under the keyring's index key). Neither key is
-- in the database; pii_index_key holds a fingerprint of the index key so
-- that a controller with another one is refused at start.
--
-- Rows written before this migration keep their clear number until a
-- controller starts: it seals them (SealClearNumbers) before it dials. The
-- gate looks a number up by its index and, for those rows, by its clear
-- value, so no refusal or consent is missed in between.

-- +goose Up
CREATE TABLE pii_index_key (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    fingerprint bytea   NOT NULL
);

ALTER TABLE consents
    ALTER COLUMN number DROP NOT NULL,
    ADD COLUMN number_index  bytea,
    ADD COLUMN number_sealed bytea,
    ADD CONSTRAINT consents_number_stored CHECK (
        (number IS NOT NULL AND number_index IS NULL AND number_sealed IS NULL) OR
        (number IS NULL AND number_index IS NOT NULL AND number_sealed IS NOT NULL));
CREATE INDEX consents_by_index ON consents (tenant_id, number_index, purpose, given_at DESC)
    WHERE number_index IS NOT NULL;
DROP INDEX consents_lookup;
CREATE INDEX consents_clear ON consents (tenant_id, number, purpose, given_at DESC)
    WHERE number IS NOT NULL;

ALTER TABLE refusals
    ALTER COLUMN number DROP NOT NULL,
    ADD COLUMN number_index  bytea,
    ADD COLUMN number_sealed bytea,
    ADD CONSTRAINT refusals_number_stored CHECK (
        (number IS NOT NULL AND number_index IS NULL AND number_sealed IS NULL) OR
        (number IS NULL AND number_index IS NOT NULL AND number_sealed IS NOT NULL));
CREATE INDEX refusals_by_index ON refusals (number_index, at DESC) WHERE number_index IS NOT NULL;
DROP INDEX refusals_number;
CREATE INDEX refusals_clear ON refusals (number, at DESC) WHERE number IS NOT NULL;

-- +goose Down
-- Sealed numbers cannot be opened in SQL: going back would lose them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM consents WHERE number IS NULL) OR EXISTS (SELECT 1 FROM refusals WHERE number IS NULL) THEN
        RAISE EXCEPTION 'consents or refusals hold sealed numbers: migrating down would lose them';
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX refusals_clear;
DROP INDEX refusals_by_index;
CREATE INDEX refusals_number ON refusals (number, at DESC);
ALTER TABLE refusals DROP CONSTRAINT refusals_number_stored,
    DROP COLUMN number_sealed, DROP COLUMN number_index;
DROP INDEX consents_clear;
DROP INDEX consents_by_index;
CREATE INDEX consents_lookup ON consents (tenant_id, number, purpose, given_at DESC);
ALTER TABLE consents DROP CONSTRAINT consents_number_stored,
    DROP COLUMN number_sealed, DROP COLUMN number_index;
DROP TABLE pii_index_key;
