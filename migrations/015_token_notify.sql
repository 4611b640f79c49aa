-- Notifications that let controllers cache verified API tokens.
--
-- Every change that can alter what a token authenticates as (revocation,
-- expiry, role, tenant, agent, secret, deletion) sends a NOTIFY on the
-- tokens channel of the schema, in the transaction that makes it, whoever
-- the writer is (the API, `callgate token revoke`, SQL by hand). A
-- controller caches a token only while its LISTEN connection is up and
-- clears its cache on every notification, so a revocation still fails the
-- next request. Recording a token's last use (last_used_at alone) does not
-- notify.
--
-- So that `callgate token revoke` can return only once every running
-- controller has dropped what it cached, each LISTEN connection registers in
-- token_cache_listeners and acknowledges barrier notifications (numbered
-- from token_cache_barriers) there; the revoking process sends a barrier
-- after its commit and waits until every live listener has seen it.

-- +goose Up
-- callgate_tokens_channel names the NOTIFY channel for the api_tokens table
-- of a schema, like callgate_attempts_channel.
-- +goose StatementBegin
CREATE FUNCTION callgate_tokens_channel(schema text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN schema = 'public' THEN 'callgate_tokens'
                ELSE left('callgate_tokens_' || schema, 63) END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION callgate_tokens_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- PostgreSQL folds identical notifications of one transaction into one.
    PERFORM pg_notify(callgate_tokens_channel(TG_TABLE_SCHEMA), '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_tokens_changed AFTER UPDATE ON api_tokens
    FOR EACH ROW
    WHEN (to_jsonb(OLD) - 'last_used_at' IS DISTINCT FROM to_jsonb(NEW) - 'last_used_at')
    EXECUTE FUNCTION callgate_tokens_notify();
CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION callgate_tokens_notify();
CREATE TRIGGER api_tokens_truncated AFTER TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION callgate_tokens_notify();

CREATE SEQUENCE token_cache_barriers;

CREATE TABLE token_cache_listeners (
    pid           integer     NOT NULL,  -- backend of the LISTEN connection
    backend_start timestamptz NOT NULL,  -- with pid, names it even if pids are reused
    seen          bigint      NOT NULL,  -- highest barrier acknowledged
    PRIMARY KEY (pid, backend_start)
);

-- +goose Down
DROP TABLE token_cache_listeners;
DROP SEQUENCE token_cache_barriers;
DROP TRIGGER api_tokens_truncated ON api_tokens;
DROP TRIGGER api_tokens_deleted ON api_tokens;
DROP TRIGGER api_tokens_changed ON api_tokens;
DROP FUNCTION callgate_tokens_notify();
DROP FUNCTION callgate_tokens_channel(text);
