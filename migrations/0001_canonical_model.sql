-- Canonical model (DESIGN §4), the app role and row-level security (DESIGN §5).
--
-- Every tenant table carries tenant_id and is protected by a policy that compares it with the
-- transaction-local setting app.tenant_id; RLS is ENABLEd and FORCEd so that not even the
-- table owner reads across tenants by accident. The app connects as eam_app: LOGIN, no
-- superuser, NOBYPASSRLS, so the policies really apply to it.

DO $$
BEGIN
    CREATE ROLE eam_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION
    -- Roles are cluster-wide: another database (or a parallel test) may have created it.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The tenant of the current transaction, or NULL when none is set (then no row is visible).
CREATE FUNCTION app_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_modules (
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    module      text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, module)
);

CREATE TABLE clients (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    reference           text NOT NULL,
    name                text NOT NULL,
    reporting_currency  char(3),
    kyc_status          text NOT NULL DEFAULT 'pending'
                        CHECK (kyc_status IN ('pending', 'verified', 'expired', 'rejected')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, reference)
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    subject     text NOT NULL,
    email       text,
    roles       text[] NOT NULL DEFAULT '{}',
    client_id   uuid REFERENCES clients(id),
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, subject)
);

-- The banks. Platform reference data shared by all tenants: no tenant_id, read-only for the app.
CREATE TABLE custodians (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    protocol    text NOT NULL CHECK (protocol IN ('bank_a', 'bank_b', 'bank_c'))
);
INSERT INTO custodians (code, name, protocol) VALUES
    ('bank_a', 'Bank A (REST JSON)', 'bank_a'),
    ('bank_b', 'Bank B (SWIFT FIN files)', 'bank_b'),
    ('bank_c', 'Bank C (ISO 20022 files)', 'bank_c');

CREATE TABLE bank_connections (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    custodian           text NOT NULL REFERENCES custodians(code),
    name                text NOT NULL,
    base_url            text NOT NULL,
    -- Secret references (file://, env://, aws-sm://), never secret values.
    client_id           text NOT NULL,
    client_secret_ref   text NOT NULL,
    client_cert_ref     text,
    client_key_ref      text,
    ca_cert_ref         text,
    schedule_cron       text,
    schedule_tz         text,
    enabled             boolean NOT NULL DEFAULT true,
    cursor              jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

CREATE TABLE sync_runs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    connection_id   uuid NOT NULL REFERENCES bank_connections(id),
    trigger         text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'retry')),
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded',
                        'succeeded_with_breaks', 'failed', 'dead', 'cancelled')),
    requested_by    text,
    attempts        integer NOT NULL DEFAULT 0,
    -- One entry per failed attempt: {attempt, at, class, message}.
    attempt_errors  jsonb NOT NULL DEFAULT '[]',
    error_class     text CHECK (error_class IN ('transient', 'auth', 'data', 'internal')),
    error_message   text,
    counts          jsonb NOT NULL DEFAULT '{}',
    cursor_before   jsonb,
    cursor_after    jsonb,
    retry_of        uuid REFERENCES sync_runs(id),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX sync_runs_tenant_queued ON sync_runs (tenant_id, queued_at DESC, id DESC);
CREATE INDEX sync_runs_connection ON sync_runs (connection_id, queued_at DESC);

CREATE TABLE accounts (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    connection_id       uuid NOT NULL REFERENCES bank_connections(id),
    client_id           uuid REFERENCES clients(id),
    bank_account_id     text NOT NULL,
    iban                text,
    currency            char(3) NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('cash', 'custody')),
    source_format       text NOT NULL,
    source_document     text NOT NULL,
    source_position     integer NOT NULL,
    first_seen_run      uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run    uuid NOT NULL REFERENCES sync_runs(id),
    UNIQUE (tenant_id, connection_id, bank_account_id)
);

CREATE TABLE securities (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    -- 'isin:<ISIN>' or 'bank:<custodian>:<bank id>': the identity within the tenant.
    security_key        text NOT NULL,
    isin                char(12),
    bank_security_id    text,
    valor               text,
    wkn                 text,
    cusip               text,
    name                text NOT NULL,
    asset_class         text NOT NULL CHECK (asset_class IN ('equity', 'bond', 'fund', 'other')),
    currency            char(3),
    first_seen_run      uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run    uuid NOT NULL REFERENCES sync_runs(id),
    UNIQUE (tenant_id, security_key)
);

CREATE TABLE positions (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    account_id          uuid NOT NULL REFERENCES accounts(id),
    security_id         uuid NOT NULL REFERENCES securities(id),
    as_of               date NOT NULL,
    quantity            numeric NOT NULL,
    quantity_type       text NOT NULL CHECK (quantity_type IN ('units', 'face_amount')),
    price               numeric,
    price_type          text NOT NULL CHECK (price_type IN ('amount', 'percent')),
    price_currency      char(3),
    market_value        numeric,
    accrued_interest    numeric,
    cost                numeric,
    source_format       text NOT NULL,
    source_document     text NOT NULL,
    source_position     integer NOT NULL,
    first_seen_run      uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run    uuid NOT NULL REFERENCES sync_runs(id),
    UNIQUE (tenant_id, account_id, security_id, as_of)
);
CREATE INDEX positions_account_as_of ON positions (account_id, as_of);

CREATE TABLE cash_balances (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    account_id          uuid NOT NULL REFERENCES accounts(id),
    currency            char(3) NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('opening', 'closing', 'available', 'forward')),
    as_of               date NOT NULL,
    amount              numeric NOT NULL,
    source_format       text NOT NULL,
    source_document     text NOT NULL,
    source_position     integer NOT NULL,
    first_seen_run      uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run    uuid NOT NULL REFERENCES sync_runs(id),
    UNIQUE (tenant_id, account_id, currency, kind, as_of)
);

CREATE TABLE transactions (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    account_id          uuid NOT NULL REFERENCES accounts(id),
    natural_key         text NOT NULL,
    bank_reference      text,
    booking_date        date NOT NULL,
    value_date          date,
    trade_date          date,
    settlement_date     date,
    type                text NOT NULL,
    bank_code           text,
    amount              numeric NOT NULL CHECK (amount >= 0),
    direction           text NOT NULL CHECK (direction IN ('debit', 'credit')),
    signed_amount       numeric NOT NULL,
    currency            char(3) NOT NULL,
    security_id         uuid REFERENCES securities(id),
    quantity            numeric,
    price               numeric,
    fees                numeric,
    status              text NOT NULL CHECK (status IN ('pending', 'booked')),
    reversal_of         uuid REFERENCES transactions(id),
    counterparty        text,
    description         text,
    source_format       text NOT NULL,
    source_document     text NOT NULL,
    source_position     integer NOT NULL,
    first_seen_run      uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run    uuid NOT NULL REFERENCES sync_runs(id),
    UNIQUE (tenant_id, account_id, natural_key),
    CHECK (signed_amount = CASE direction WHEN 'credit' THEN amount ELSE -amount END)
);
CREATE INDEX transactions_account_booking ON transactions (account_id, booking_date, id);

-- Row-level security: one policy per tenant table, ENABLE + FORCE.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_modules', 'clients', 'users', 'bank_connections',
        'sync_runs', 'accounts', 'securities', 'positions', 'cash_balances', 'transactions']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());

GRANT USAGE ON SCHEMA public TO eam_app;
GRANT SELECT ON custodians TO eam_app;
GRANT SELECT, INSERT, UPDATE ON tenants TO eam_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_modules, clients, users, bank_connections,
    accounts, securities, positions, cash_balances, transactions TO eam_app;
-- Job history is never deleted by the app.
GRANT SELECT, INSERT, UPDATE ON sync_runs TO eam_app;
GRANT EXECUTE ON FUNCTION app_current_tenant() TO eam_app;
