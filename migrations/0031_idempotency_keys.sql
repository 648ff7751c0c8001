-- Issue 21: Idempotency-Key on every POST (Stripe's semantics). The first request with a key
-- is recorded before it runs (so a concurrent duplicate finds it in progress: 409), then its
-- answer; the same key with the same request within 24 hours gets that answer again, with
-- another request 422. Scoped to the caller (tenant and token subject): one user's keys are
-- nobody else's. An answer of 5xx is not kept (the request changed nothing; try again), nor a
-- request abandoned mid-way (a process that died): after 5 minutes in progress, the key is
-- free again.
CREATE TABLE idempotency_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    subject      text NOT NULL,
    key          text NOT NULL,
    -- SHA-256 of method, path, query and body: what "the same request" means.
    fingerprint  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    status       smallint,
    -- The answer's content-type, location and retry-after, as a JSON object.
    headers      jsonb,
    body         bytea,
    PRIMARY KEY (tenant_id, subject, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO eam_app;
