-- Why a call is made (marketing, service, transactional): consent is given
-- per purpose, so the dial-time re-check of the compliance gate needs it.
-- +goose Up
ALTER TABLE calls ADD COLUMN purpose text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE calls DROP COLUMN purpose;
