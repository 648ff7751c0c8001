-- Issue 24: the audit chain anchored outside the database. Until now an entry's hash was a
-- plain SHA-256 of its fields and the previous hash, so whoever could write the table could
-- delete the newest entries, or edit one and recompute every later hash, and the chain still
-- verified. Now:
--  * each entry has its place in the tenant's log (`seq`, 1, 2, 3 … without gaps), and
--  * is keyed: an HMAC-SHA256 with a key the database never holds (`audit.key_ref`, from the
--    secret provider), named by `key_id` (its fingerprint). Entries written before a key was
--    configured keep `key_id` NULL and their SHA-256; `eam audit verify` accepts them only
--    before the tenant's first keyed entry.
--  * workers publish the tenant's newest (seq, hash) as a signed head to the archive (S3 with
--    object lock in production) every `audit.head_interval_secs`; `audit_heads` only records
--    which heads were published so that an unchanged log is not published again. Verification
--    reads the heads from the archive, never from here.

ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN key_id text;
UPDATE audit_log a SET seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY id) AS seq FROM audit_log) n
WHERE a.id = n.id;
ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX audit_log_tenant_seq ON audit_log (tenant_id, seq);

CREATE TABLE audit_heads (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    seq          bigint NOT NULL,
    entry_id     bigint NOT NULL,
    hash         text NOT NULL,
    object_key   text NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT ON audit_heads TO eam_app;
