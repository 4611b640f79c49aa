-- The audit log: who did what, when, with what outcome. Append-only and hash
-- chained (controller.AuditHash): each row's hash covers the previous row's
-- hash and its own fields, so `callgate audit verify` finds any row that was
-- edited, removed or reordered.
--
-- seq is assigned by the store, gapless (1, 2, 3, …), under a transaction
-- advisory lock, so the chain never forks. tenant_id has no foreign key:
-- entries outlive their tenants, and '' marks system entries. Entries never
-- hold a full phone number (the store refuses them).
--
-- Append-only for the application. REVOKE alone is not enough: callgate
-- usually connects as the table's owner, whose rights a REVOKE does not
-- remove. A trigger therefore refuses every UPDATE, DELETE and TRUNCATE
-- unless the session (or transaction) set callgate.audit_maintenance = 'on':
--
--     BEGIN;
--     SET LOCAL callgate.audit_maintenance = 'on';
--     DELETE FROM audit_log WHERE …;
--     COMMIT;
--
-- The retention purge of the audit log, if there is ever one, goes through
-- that switch. (It would cut the chain's head: `audit verify` expects the
-- chain to start at seq 1 and would need to be told the first kept entry.)
-- The tests use the switch to play an attacker with direct database access.
-- Whoever owns the table can still drop the trigger or set
-- session_replication_role = replica; the hash chain is what catches that.

-- +goose Up
CREATE TABLE audit_log (
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    at         timestamptz NOT NULL,
    tenant_id  text NOT NULL DEFAULT '',
    token_id   text NOT NULL DEFAULT '',
    role       text NOT NULL DEFAULT '',
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    outcome    text NOT NULL,
    status     int NOT NULL DEFAULT 0,
    request_id text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT '',
    prev_hash  bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32)
);
-- An auditor reads one tenant's entries in order.
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('callgate.audit_maintenance', true), '') = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW; -- NULL for TRUNCATE, which ignores it
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only the audit retention purge may, with SET LOCAL callgate.audit_maintenance = ''on''';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
