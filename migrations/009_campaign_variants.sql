-- A/B tests of scripts: a campaign may split its leads between variants,
-- each running its own flow. A lead's variant is fixed when it joins the
-- campaign (controller.VariantOf, computed in SQL); each call records the
-- variant it ran, so the campaign's statistics group calls by it.

-- +goose Up
ALTER TABLE campaign_leads ADD COLUMN variant text NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN variant text;

-- +goose Down
ALTER TABLE calls DROP COLUMN variant;
ALTER TABLE campaign_leads DROP COLUMN variant;
