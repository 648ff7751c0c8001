-- Security (issue 4): the client users' second lock, the platform's view of tenants, and the
-- users and clients the tenant admins manage.

-- The client of the current transaction, set for client users only (NULL for staff and
-- workers): a second, restrictive policy keeps a client user to that client's rows, whatever
-- a query forgets.
CREATE FUNCTION app_current_client() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.client_id', true), '')::uuid $$;
GRANT EXECUTE ON FUNCTION app_current_client() TO eam_app;

CREATE POLICY client_scope ON clients AS RESTRICTIVE
    USING (app_current_client() IS NULL OR id = app_current_client());
CREATE POLICY client_scope ON accounts AS RESTRICTIVE
    USING (app_current_client() IS NULL OR client_id = app_current_client());
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['positions', 'cash_balances', 'transactions', 'reconciliation_breaks']
    LOOP
        EXECUTE format('CREATE POLICY client_scope ON %I AS RESTRICTIVE USING ('
                       'app_current_client() IS NULL OR account_id IN ('
                       'SELECT a.id FROM accounts a WHERE a.client_id = app_current_client()))', t);
    END LOOP;
END
$$;

-- Users: one per IdP subject and tenant; an email at most once per tenant.
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email)) WHERE email IS NOT NULL;
ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE clients ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE clients ADD CONSTRAINT clients_reporting_currency_format
    CHECK (reporting_currency IS NULL OR reporting_currency ~ '^[A-Z]{3}$');

-- Platform admins list every tenant; RLS rightly shows the app one tenant at a time. As for
-- the dispatcher, one function runs as a role that may read the tenants table, and nothing
-- else, and returns only what the platform view needs.
DO $$
BEGIN
    CREATE ROLE eam_platform NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
    EXECUTE format('GRANT eam_platform TO %I', current_user);
EXCEPTION
    WHEN OTHERS THEN NULL;
END
$$;
GRANT USAGE ON SCHEMA public TO eam_platform;
GRANT SELECT ON tenants, tenant_modules TO eam_platform;
CREATE POLICY platform_reads ON tenants TO eam_platform USING (true);
CREATE POLICY platform_reads ON tenant_modules TO eam_platform USING (true);

CREATE FUNCTION platform_tenants()
RETURNS TABLE (id uuid, name text, created_at timestamptz, modules text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT t.id, t.name, t.created_at,
        coalesce(array_agg(m.module ORDER BY m.module) FILTER (WHERE m.enabled), '{}')
    FROM tenants t LEFT JOIN tenant_modules m ON m.tenant_id = t.id
    GROUP BY t.id ORDER BY t.created_at, t.id
$$;
ALTER FUNCTION platform_tenants() OWNER TO eam_platform;
REVOKE ALL ON FUNCTION platform_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_tenants() TO eam_app;

-- Whether a tenant exists, for attributing a refused token to it in its audit log.
CREATE FUNCTION tenant_exists(tenant uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM tenants WHERE id = tenant) $$;
ALTER FUNCTION tenant_exists(uuid) OWNER TO eam_platform;
REVOKE ALL ON FUNCTION tenant_exists(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_exists(uuid) TO eam_app;
