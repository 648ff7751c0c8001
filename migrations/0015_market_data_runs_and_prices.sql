-- Market data runs and prices (issue 16).
--
-- market_data_runs: every load of the ECB's reference rates, platform-wide (no tenant owns
-- it, like fx_rates): scheduled by the worker's tick or started by ops, run as a job on the
-- queue. Statuses follow the sync runs' state machine (model::RunStatus), of which a
-- market-data run uses queued, running, succeeded and failed (cancelled: a run triggered by
-- hand that the queue could not take). A scheduled time is recorded in
-- `scheduled_for`, unique: of two ticks handling the same time, one inserts the run and the
-- other conflicts, so each scheduled time runs once however many workers tick.
CREATE TABLE market_data_runs (
    id                uuid PRIMARY KEY,
    trigger           text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    -- The ECB file: 'daily' or 'history'; NULL until a scheduled run decides when it starts
    -- (the history while no ECB rate is stored, the daily file after).
    file              text CHECK (file IN ('daily', 'history')),
    status            text NOT NULL
                      CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    scheduled_for     timestamptz UNIQUE,
    requested_by      text,
    attempts          integer NOT NULL DEFAULT 0,
    queued_at         timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    -- Not to be started before this (a transient failure waits here for its next attempt).
    next_attempt_at   timestamptz,
    -- When the dispatcher (or the API) last pushed a task for the run, and how often.
    enqueued_at       timestamptz,
    enqueue_count     integer NOT NULL DEFAULT 0,
    lease_owner       text,
    lease_expires_at  timestamptz,
    error_class       text CHECK (error_class IN ('transient', 'auth', 'data', 'internal')),
    error_message     text,
    -- What the run loaded: the archived document (its name and SHA-256) and its rates.
    document          text,
    document_sha256   text,
    rates             integer,
    inserted          integer,
    updated           integer,
    unchanged         integer,
    warnings          jsonb NOT NULL DEFAULT '[]',
    CHECK ((trigger = 'schedule') = (scheduled_for IS NOT NULL))
);
CREATE INDEX market_data_runs_queued ON market_data_runs (queued_at DESC, id DESC);
-- Run history is never deleted by the app.
GRANT SELECT, INSERT, UPDATE ON market_data_runs TO eam_app;

-- Prices of securities as banks report them, per security and date, with their source: the
-- connection (so the custodian) and the kind of record they came from. A position's price
-- (MT535 :90a:, semt.002, bank_a positions) is one row per connection, security and date; a
-- trade's deal price is one row per transaction (two trades of a day are two prices). Loads
-- are idempotent: a resync writes nothing, a changed price updates its row.
CREATE TABLE prices (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    security_id       uuid NOT NULL REFERENCES securities(id),
    price_date        date NOT NULL,
    connection_id     uuid NOT NULL REFERENCES bank_connections(id),
    kind              text NOT NULL CHECK (kind IN ('position', 'trade')),
    transaction_id    uuid REFERENCES transactions(id) ON DELETE CASCADE,
    price             numeric NOT NULL,
    price_type        text NOT NULL CHECK (price_type IN ('amount', 'percent')),
    -- An amount price's currency; for a percent price the face amount's; NULL when the bank
    -- does not say.
    currency          char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    source_format     text NOT NULL,
    source_document   text NOT NULL,
    source_position   integer NOT NULL,
    first_seen_run    uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run  uuid NOT NULL REFERENCES sync_runs(id),
    CHECK ((kind = 'trade') = (transaction_id IS NOT NULL))
);
CREATE UNIQUE INDEX prices_position_key ON prices (tenant_id, connection_id, security_id, price_date)
    WHERE kind = 'position';
CREATE UNIQUE INDEX prices_trade_key ON prices (tenant_id, transaction_id) WHERE kind = 'trade';
CREATE INDEX prices_security_date ON prices (security_id, price_date);

ALTER TABLE prices ENABLE ROW LEVEL SECURITY;
ALTER TABLE prices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON prices USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());
-- A client user sees the deal prices of its own client's trades only (the transactions'
-- policies decide which those are); position prices are the bank's price of the security.
CREATE POLICY client_scope ON prices AS RESTRICTIVE
    USING (app_current_client() IS NULL OR transaction_id IS NULL
           OR transaction_id IN (SELECT t.id FROM transactions t));
GRANT SELECT, INSERT, UPDATE, DELETE ON prices TO eam_app;
