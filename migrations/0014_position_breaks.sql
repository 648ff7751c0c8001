-- Issue 16: position reconciliation. A custody account's holdings of a security that differ
-- from its previous snapshot plus the securities movements booked in between are a break of
-- kind 'position' (allowed since 0013). Its expected and actual are quantities (the previous
-- holding plus the movements, and the holding reported), its statement_date the date of the
-- snapshot checked, and it names the security and the period the movements cover.
ALTER TABLE reconciliation_breaks
    -- The security whose holding does not add up.
    ADD COLUMN security_id uuid REFERENCES securities(id),
    -- How the sync's statements named it when the break was found (ISIN or the bank's id, and
    -- the name): the break stays readable as found, whatever the security is called later.
    ADD COLUMN security_label text,
    -- The previous snapshot's date: the movements counted are those after it, up to
    -- statement_date.
    ADD COLUMN period_from date,
    ADD CONSTRAINT reconciliation_breaks_position_fields CHECK (
        kind <> 'position'
        OR (security_label IS NOT NULL AND period_from IS NOT NULL
            AND statement_date IS NOT NULL AND period_from < statement_date
            AND expected IS NOT NULL AND actual IS NOT NULL)
    );

-- The complete holdings snapshots loaded, per account and date, even those that list nothing:
-- a snapshot of an account that held nothing leaves no position row, yet the next one must be
-- checked against it (zero held) rather than against nothing.
CREATE TABLE position_snapshots (
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    account_id      uuid NOT NULL REFERENCES accounts(id),
    as_of           date NOT NULL,
    first_seen_run  uuid NOT NULL REFERENCES sync_runs(id),
    PRIMARY KEY (tenant_id, account_id, as_of)
);
ALTER TABLE position_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE position_snapshots FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON position_snapshots
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY client_scope ON position_snapshots AS RESTRICTIVE USING (
    app_current_client() IS NULL OR account_id IN (
        SELECT a.id FROM accounts a WHERE a.client_id = app_current_client()));
GRANT SELECT, INSERT ON position_snapshots TO eam_app;
