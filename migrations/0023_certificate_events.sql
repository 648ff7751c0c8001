-- Issue 18: certificate.expiring. The workers check every connection's client certificate
-- (through the tenant's secret references, as a sync reads it) and emit the event once per
-- certificate and status: once when it enters the warning window, once more if it expires.
CREATE TABLE certificate_warnings (
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    connection_id  uuid NOT NULL REFERENCES bank_connections(id) ON DELETE CASCADE,
    not_after      timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('expiring', 'expired')),
    warned_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, not_after, status)
);
ALTER TABLE certificate_warnings ENABLE ROW LEVEL SECURITY;
ALTER TABLE certificate_warnings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certificate_warnings
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT ON certificate_warnings TO eam_app;

INSERT INTO event_type_roles (type, role)
SELECT 'certificate.expiring', r FROM unnest(ARRAY['tenant_admin', 'ops', 'support']) AS r
ON CONFLICT DO NOTHING;

-- The certificate check's cross-tenant read: connections that present a client certificate,
-- with its reference (a reference, never a secret).
CREATE FUNCTION client_certificate_refs()
RETURNS TABLE (tenant_id uuid, connection_id uuid, connection_name text, custodian text,
               client_cert_ref text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT c.tenant_id, c.id, c.name, c.custodian, c.client_cert_ref
    FROM bank_connections c
    WHERE c.client_cert_ref IS NOT NULL AND c.client_cert_ref <> ''
    ORDER BY c.tenant_id, c.id
$$;
ALTER FUNCTION client_certificate_refs() OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION client_certificate_refs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client_certificate_refs() TO eam_app;
