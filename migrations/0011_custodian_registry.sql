-- The custodian registry (issue 23): where a custodian's API lives and which CA signs its
-- server certificate are the platform's to say, not a tenant's. A tenant picks a custodian and
-- gives references to its own credentials; the worker connects where the registry says.
-- A custodian may let tenants give their own URL (per-tenant hosts at some banks): then the
-- URL's host must be one of allowed_hosts (an exact name or '*.suffix').
ALTER TABLE custodians
    ADD COLUMN base_url      text,
    -- A platform secret reference (any scheme): the CA certificate of the custodian's server.
    ADD COLUMN ca_cert_ref   text,
    ADD COLUMN tenant_urls   boolean NOT NULL DEFAULT false,
    ADD COLUMN allowed_hosts text[] NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now();

-- A connection's own URL only where its custodian allows one; the CA only in the registry.
-- URLs and CA references tenants gave before are not trusted: the platform sets the registry.
ALTER TABLE bank_connections ALTER COLUMN base_url DROP NOT NULL;
UPDATE bank_connections SET base_url = NULL;
ALTER TABLE bank_connections DROP COLUMN ca_cert_ref;

-- Platform admins maintain the registry through the API (the route checks the role).
GRANT INSERT, UPDATE ON custodians TO eam_app;
