-- Preview dialling: an agent is offered a lead (status preview, reserved
-- for them) and accepts it (pending again, accepted_by them: dispatched
-- first, and connected to them when answered) or skips it.

-- +goose Up
ALTER TABLE campaign_leads DROP CONSTRAINT campaign_leads_status_check;
ALTER TABLE campaign_leads ADD CONSTRAINT campaign_leads_status_check
    CHECK (status IN ('pending', 'dialling', 'done', 'preview'));
ALTER TABLE campaign_leads
    ADD COLUMN reserved_by uuid,       -- the agent a lead is offered to (status preview)
    ADD COLUMN reserved_at timestamptz,
    ADD COLUMN accepted_by uuid;       -- the agent who accepted it, until it is settled
CREATE UNIQUE INDEX campaign_leads_reserved ON campaign_leads (reserved_by) WHERE status = 'preview';
CREATE INDEX campaign_leads_accepted ON campaign_leads (campaign_id) WHERE accepted_by IS NOT NULL;

-- +goose Down
DROP INDEX campaign_leads_accepted;
DROP INDEX campaign_leads_reserved;
ALTER TABLE campaign_leads DROP COLUMN accepted_by, DROP COLUMN reserved_at, DROP COLUMN reserved_by;
UPDATE campaign_leads SET status = 'pending' WHERE status = 'preview';
ALTER TABLE campaign_leads DROP CONSTRAINT campaign_leads_status_check;
ALTER TABLE campaign_leads ADD CONSTRAINT campaign_leads_status_check
    CHECK (status IN ('pending', 'dialling', 'done'));
