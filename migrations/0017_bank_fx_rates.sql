-- Issue 16: the exchange rates banks state in their files (camt CcyXchg, MT535/536 :92B::EXCH,
-- semt.002 FX details): 1 base = rate quote on rate_date, per account whose statement states
-- it. Tenant data, unlike fx_rates (the ECB's, platform-wide): one firm's bank rates never
-- enter another firm's figures. Within the firm a stated rate is the bank's rate of the day,
-- like a position price: every valuation of the tenant may use it
-- (model::wealth::fx::RateBook::add_bank_pair says when), so an account valued alone, its
-- client's consolidated view and a client user's view give the same figure. Idempotent like
-- every load: a resync writes nothing, a changed rate updates its row.
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
-- No client scope: a client user's valuation uses the same rates as its advisor's (the rate,
-- its date and the custodian are shown; the statement that stated it is not).
GRANT SELECT, INSERT, UPDATE ON bank_fx_rates TO eam_app;
