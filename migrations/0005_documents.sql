-- The statement archive (issue 7): one row per raw document fetched from a bank (the bytes are
-- in the object archive, content-addressed), replay runs, and each connection's client
-- certificate expiry as the worker last read it.

-- A replay re-normalizes the archived documents of an earlier run into the store without
-- calling the bank (after a parser fix, say): a run of its own, linked to that source run.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_trigger_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_trigger_check
    CHECK (trigger IN ('manual', 'schedule', 'retry', 'replay'));
ALTER TABLE sync_runs ADD COLUMN replay_of uuid REFERENCES sync_runs(id);
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_replay_has_source
    CHECK ((trigger = 'replay') = (replay_of IS NOT NULL));
CREATE INDEX sync_runs_replay_of ON sync_runs (replay_of) WHERE replay_of IS NOT NULL;

CREATE TABLE documents (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    connection_id   uuid NOT NULL REFERENCES bank_connections(id),
    run_id          uuid NOT NULL REFERENCES sync_runs(id),
    -- The attempt of the run that fetched it, and its place in that fetch (replay keeps the
    -- order: later pages and files win over earlier ones).
    attempt         integer NOT NULL CHECK (attempt >= 1),
    seq             integer NOT NULL CHECK (seq >= 0),
    -- The name records' provenance gives (`transactions/<account>/page-2`, a file's name).
    name            text NOT NULL,
    kind            text NOT NULL
                    CHECK (kind IN ('accounts', 'positions', 'balances', 'transactions', 'file')),
    account_ref     text,
    page            integer NOT NULL,
    file_id         text,
    -- `bank_a_json`, or the bank's listed file format (`mt940`, `camt053`, ...).
    format          text NOT NULL,
    size            bigint NOT NULL CHECK (size >= 0),
    sha256          char(64) NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    storage_key     text NOT NULL,
    fetched_at      timestamptz NOT NULL,
    UNIQUE (run_id, attempt, seq)
);
CREATE INDEX documents_tenant ON documents (tenant_id, id DESC);
CREATE INDEX documents_run ON documents (tenant_id, run_id, attempt, seq);
CREATE INDEX documents_connection ON documents (tenant_id, connection_id, id DESC);

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON documents
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- The archive's index is evidence: the app adds to it, never edits or deletes it.
GRANT SELECT, INSERT ON documents TO eam_app;

-- The notAfter of the connection's client certificate, as the last sync read it.
ALTER TABLE bank_connections ADD COLUMN client_cert_expires_at timestamptz;

-- Metrics (every tenant's certificates about to expire) need a cross-tenant read that RLS
-- rightly denies the app. As for due runs, one narrow function returns only ids and dates.
GRANT SELECT ON bank_connections TO eam_dispatch;
CREATE POLICY dispatcher_reads_expiries ON bank_connections TO eam_dispatch USING (true);
CREATE FUNCTION client_certificate_expiries()
RETURNS TABLE (tenant_id uuid, connection_id uuid, custodian text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT c.tenant_id, c.id, c.custodian, c.client_cert_expires_at
    FROM bank_connections c
    WHERE c.client_cert_expires_at IS NOT NULL
    ORDER BY c.client_cert_expires_at, c.id
$$;
ALTER FUNCTION client_certificate_expiries() OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION client_certificate_expiries() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client_certificate_expiries() TO eam_app;
