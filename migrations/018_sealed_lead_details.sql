-- A lead's name and custom fields (free columns of the upload: e-mail,
-- address, account…) are personal data too: sealed together, like its
-- number (controller/pii), in personal_sealed. Tags stay in the clear: they
-- are what campaigns target. Rows written before keep name and fields until
-- a controller seals them at start.

-- +goose Up
ALTER TABLE leads ADD COLUMN personal_sealed bytea;

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM leads WHERE personal_sealed IS NOT NULL) THEN
        RAISE EXCEPTION 'leads hold sealed names and fields: migrating down would lose them';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE leads DROP COLUMN personal_sealed;
