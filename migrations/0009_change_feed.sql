-- Change feed (issue 8): every API process keeps the portfolio pages it served in a short-lived
-- read cache, and must drop a tenant's pages as soon as that tenant's portfolio data changes,
-- whoever changed it (a worker's sync, an admin, a retention job, a person at psql).
--
-- A statement-level trigger on each table the portfolio reads are built from notifies channel
-- `eam_portfolio_changed` with the tenant the writing transaction is scoped to
-- (`app.tenant_id`), or `*` when the writer has no tenant set (a platform-level change: every
-- tenant's pages go). PostgreSQL delivers a notification only when its transaction commits,
-- once per distinct payload per transaction, in commit order. Statement-level, without
-- transition tables: a sync's bulk insert of a million transactions notifies once and keeps no
-- copy of its rows. A statement that touched no row notifies too (a sync that found nothing
-- new): that costs the tenant its cached pages, nothing else.

CREATE FUNCTION notify_portfolio_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify(
        'eam_portfolio_changed',
        coalesce(nullif(current_setting('app.tenant_id', true), ''), '*')
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed AFTER UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
CREATE TRIGGER accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
CREATE TRIGGER securities_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON securities
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
CREATE TRIGGER positions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON positions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
CREATE TRIGGER cash_balances_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cash_balances
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
CREATE TRIGGER transactions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_portfolio_changed();
