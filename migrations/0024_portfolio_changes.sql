-- Issue 18: the changes feed. Every account, position and transaction added, modified or
-- removed is logged, in commit order by `seq`, by statement-level triggers over the rows the
-- statement changed (set-based: a load of a million rows adds one INSERT .. SELECT, not a
-- million trigger calls). The load's upserts write nothing when nothing changed, so a re-sync
-- of the same data logs nothing. An integrator reads `GET /changes?cursor=` and never pages by
-- date: a booking delivered late with an old date is still a change after its cursor.
CREATE TABLE portfolio_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    -- The account's client when the change was logged (a client user reads its own).
    client_id   uuid,
    account_id  uuid NOT NULL,
    entity      text NOT NULL CHECK (entity IN ('account', 'position', 'transaction')),
    entity_id   uuid NOT NULL,
    change      text NOT NULL CHECK (change IN ('added', 'modified', 'removed')),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portfolio_changes_tenant_seq ON portfolio_changes (tenant_id, seq);

ALTER TABLE portfolio_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE portfolio_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON portfolio_changes
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY client_scope ON portfolio_changes AS RESTRICTIVE
    USING (app_current_client() IS NULL OR client_id = app_current_client());
GRANT SELECT ON portfolio_changes TO eam_app;
-- Written by the triggers below only (they run as eam_dispatch).
GRANT SELECT, INSERT ON portfolio_changes TO eam_dispatch;
CREATE POLICY change_writer ON portfolio_changes TO eam_dispatch USING (true) WITH CHECK (true);

CREATE FUNCTION log_transaction_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    what text := CASE TG_OP WHEN 'INSERT' THEN 'added' WHEN 'UPDATE' THEN 'modified'
                 ELSE 'removed' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO portfolio_changes (tenant_id, client_id, account_id, entity, entity_id, change)
        SELECT r.tenant_id, a.client_id, r.account_id, TG_ARGV[0], r.id, what
        FROM changed_old r LEFT JOIN accounts a ON a.id = r.account_id ORDER BY r.id;
    ELSE
        INSERT INTO portfolio_changes (tenant_id, client_id, account_id, entity, entity_id, change)
        SELECT r.tenant_id, a.client_id, r.account_id, TG_ARGV[0], r.id, what
        FROM changed_new r LEFT JOIN accounts a ON a.id = r.account_id ORDER BY r.id;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION log_transaction_changes() OWNER TO eam_dispatch;

CREATE TRIGGER transactions_added AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
    EXECUTE FUNCTION log_transaction_changes('transaction');
CREATE TRIGGER transactions_modified AFTER UPDATE ON transactions
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
    EXECUTE FUNCTION log_transaction_changes('transaction');
CREATE TRIGGER transactions_removed AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
    EXECUTE FUNCTION log_transaction_changes('transaction');
CREATE TRIGGER positions_added AFTER INSERT ON positions
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
    EXECUTE FUNCTION log_transaction_changes('position');
CREATE TRIGGER positions_modified AFTER UPDATE ON positions
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
    EXECUTE FUNCTION log_transaction_changes('position');
CREATE TRIGGER positions_removed AFTER DELETE ON positions
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
    EXECUTE FUNCTION log_transaction_changes('position');

-- Accounts are their own account.
CREATE FUNCTION log_account_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    what text := CASE TG_OP WHEN 'INSERT' THEN 'added' WHEN 'UPDATE' THEN 'modified'
                 ELSE 'removed' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO portfolio_changes (tenant_id, client_id, account_id, entity, entity_id, change)
        SELECT r.tenant_id, r.client_id, r.id, 'account', r.id, what FROM changed_old r ORDER BY r.id;
    ELSE
        INSERT INTO portfolio_changes (tenant_id, client_id, account_id, entity, entity_id, change)
        SELECT r.tenant_id, r.client_id, r.id, 'account', r.id, what FROM changed_new r ORDER BY r.id;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION log_account_changes() OWNER TO eam_dispatch;
CREATE TRIGGER accounts_added AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
    EXECUTE FUNCTION log_account_changes();
CREATE TRIGGER accounts_modified AFTER UPDATE ON accounts
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
    EXECUTE FUNCTION log_account_changes();
CREATE TRIGGER accounts_removed AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
    EXECUTE FUNCTION log_account_changes();
