-- Issue 16: the exchange rates banks state in their files (camt CcyXchg, MT535/536 :92B::EXCH,
-- semt.002 FX details): 1 base = rate quote on rate_date, per account whose statement states
-- it. Tenant data, unlike fx_rates (the ECB's, platform-wide): a valuation uses only the rates
-- stated in the documents of the accounts it values (model::wealth::fx::RateBook::add_bank_pair
-- says when a bank's rate is used at all), so a portfolio's figures never depend on another
-- client's statements. Idempotent like every load: a resync writes nothing, a changed rate
-- updates its row.
CREATE TABLE bank_fx_rates (
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    account_id        uuid NOT NULL REFERENCES accounts(id),
    base              char(3) NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
    quote             char(3) NOT NULL CHECK (quote ~ '^[A-Z]{3}$'),
    rate_date         date NOT NULL,
    rate              numeric NOT NULL CHECK (rate > 0),
    source_format     text NOT NULL,
    source_document   text NOT NULL,
    source_position   integer NOT NULL,
    first_seen_run    uuid NOT NULL REFERENCES sync_runs(id),
    last_changed_run  uuid NOT NULL REFERENCES sync_runs(id),
    PRIMARY KEY (tenant_id, account_id, base, quote, rate_date),
    CHECK (base <> quote)
);
CREATE INDEX bank_fx_rates_by_date ON bank_fx_rates (tenant_id, rate_date);

ALTER TABLE bank_fx_rates ENABLE ROW LEVEL SECURITY;
ALTER TABLE bank_fx_rates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bank_fx_rates
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY client_scope ON bank_fx_rates AS RESTRICTIVE USING (
    app_current_client() IS NULL OR account_id IN (
        SELECT a.id FROM accounts a WHERE a.client_id = app_current_client()));
GRANT SELECT, INSERT, UPDATE ON bank_fx_rates TO eam_app;
