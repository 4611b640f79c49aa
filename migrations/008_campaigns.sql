-- Campaigns: lead lists (imported from CSV, deduplicated per list), the
-- campaigns that dial them, and each lead's progress in a campaign. A
-- campaign's calls are ordinary calls (with their attempt, gated at dial
-- time) that name the campaign and the lead.

-- +goose Up
CREATE TABLE lead_lists (
    id         uuid PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per person in a list; a number appears once per list.
CREATE TABLE leads (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL,
    list_id    uuid NOT NULL REFERENCES lead_lists ON DELETE CASCADE,
    phone      text NOT NULL,
    name       text NOT NULL DEFAULT '',
    time_zone  text NOT NULL DEFAULT '',
    tags       jsonb NOT NULL DEFAULT '{}',
    fields     jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (list_id, phone)
);

-- One row per CSV upload: its progress while it runs, then its report.
-- heartbeat is renewed while a controller works on it; a running import
-- whose heartbeat stopped was interrupted.
CREATE TABLE lead_imports (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    list_id     uuid NOT NULL REFERENCES lead_lists ON DELETE CASCADE,
    state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    rows_read   int NOT NULL DEFAULT 0,
    imported    int NOT NULL DEFAULT 0,
    duplicates  int NOT NULL DEFAULT 0,
    rejected    int NOT NULL DEFAULT 0,
    rejects     jsonb NOT NULL DEFAULT '[]',
    error       text NOT NULL DEFAULT '',
    heartbeat   timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- Whichever controller dispatches a campaign does it under the row's lock,
-- so its limits hold across controllers.
CREATE TABLE campaigns (
    id              uuid PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    name            text NOT NULL,
    state           text NOT NULL DEFAULT 'draft'
                        CHECK (state IN ('draft', 'running', 'paused', 'stopped', 'archived')),
    settings        jsonb NOT NULL, -- controller.Campaign's settings
    caller_id_next  bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    ended_at        timestamptz
);
CREATE INDEX campaigns_running ON campaigns (id) WHERE state = 'running';

-- A lead's progress in a campaign: pending (due at next_at), dialling (call_id
-- is live) or done. phone is the lead's, copied so dispatch reads one table.
CREATE TABLE campaign_leads (
    campaign_id  uuid NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    lead_id      bigint NOT NULL REFERENCES leads ON DELETE CASCADE,
    phone        text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dialling', 'done')),
    attempts     int NOT NULL DEFAULT 0,
    outcomes     jsonb NOT NULL DEFAULT '{}', -- attempts per outcome
    next_at      timestamptz NOT NULL DEFAULT '-infinity',
    call_id      uuid,
    last_outcome text NOT NULL DEFAULT '',
    disposition  text NOT NULL DEFAULT '',
    PRIMARY KEY (campaign_id, lead_id),
    UNIQUE (campaign_id, phone) -- a number is in a campaign once, whatever its lists
);
CREATE INDEX campaign_leads_due ON campaign_leads (campaign_id, next_at, lead_id) WHERE status = 'pending';
CREATE INDEX campaign_leads_dialling ON campaign_leads (campaign_id) WHERE status = 'dialling';

ALTER TABLE calls ADD COLUMN campaign_id uuid, ADD COLUMN lead_id bigint;
-- The database's own guarantee that a lead never has two live calls.
CREATE UNIQUE INDEX calls_lead_live ON calls (campaign_id, lead_id)
    WHERE lead_id IS NOT NULL AND state IN ('queued', 'originating', 'ringing', 'early', 'answered');
CREATE INDEX calls_lead ON calls (campaign_id, lead_id, created_at) WHERE lead_id IS NOT NULL;
-- The calls-per-second limit counts a campaign's calls of the last window.
CREATE INDEX calls_campaign_recent ON calls (campaign_id, created_at) WHERE campaign_id IS NOT NULL;

-- +goose Down
DROP INDEX calls_campaign_recent;
DROP INDEX calls_lead;
DROP INDEX calls_lead_live;
ALTER TABLE calls DROP COLUMN lead_id, DROP COLUMN campaign_id;
DROP TABLE campaign_leads;
DROP TABLE campaigns;
DROP TABLE lead_imports;
DROP TABLE leads;
DROP TABLE lead_lists;
