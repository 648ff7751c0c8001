-- Reconciliation (issue 3): the breaks a sync's statements showed, and where each account's
-- chain of statements ended, so the next sync's first statement is checked against it.

CREATE TABLE reconciliation_breaks (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    run_id              uuid NOT NULL REFERENCES sync_runs(id),
    connection_id       uuid NOT NULL REFERENCES bank_connections(id),
    -- The loaded account, when the statement's account was loaded (it normally is).
    account_id          uuid REFERENCES accounts(id),
    -- The account as the statement names it.
    account_ref         text NOT NULL,
    currency            char(3) NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('balance', 'continuity', 'sequence')),
    statement_reference text,
    statement_number    integer,
    statement_date      date,
    expected            numeric,
    actual              numeric,
    message             text NOT NULL,
    source_document     text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliation_breaks_run ON reconciliation_breaks (tenant_id, run_id);
CREATE INDEX reconciliation_breaks_account ON reconciliation_breaks (tenant_id, account_id, created_at DESC);

CREATE TABLE statement_chains (
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    connection_id    uuid NOT NULL REFERENCES bank_connections(id),
    account_ref      text NOT NULL,
    currency         char(3) NOT NULL,
    statement_number integer,
    page_number      integer,
    last_page        boolean NOT NULL,
    closing_amount   numeric NOT NULL,
    closing_date     date NOT NULL,
    reference        text,
    last_run         uuid NOT NULL REFERENCES sync_runs(id),
    PRIMARY KEY (tenant_id, connection_id, account_ref, currency)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['reconciliation_breaks', 'statement_chains']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
-- Breaks are history: the app adds them, never edits or deletes them.
GRANT SELECT, INSERT ON reconciliation_breaks TO eam_app;
GRANT SELECT, INSERT, UPDATE ON statement_chains TO eam_app;

-- File-based banks authenticate by client certificate alone (bank_b) or with an API key
-- (bank_c): an OAuth client id and secret are bank_a's, not every connection's.
ALTER TABLE bank_connections ALTER COLUMN client_id DROP NOT NULL;
ALTER TABLE bank_connections ALTER COLUMN client_secret_ref DROP NOT NULL;

-- A security first seen only as a reference (in a transaction) has a placeholder description
-- until a holdings statement describes it; then the description stands.
ALTER TABLE securities ADD COLUMN described boolean NOT NULL DEFAULT true;
