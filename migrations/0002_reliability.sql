-- Reliability (issue 5): leases and retry times on runs, one active run per connection,
-- pausing failing connections, circuit breaker snapshots, the audit log, and the dispatcher's
-- narrow cross-tenant view of due runs. Also the reversal flag of statement entries.

ALTER TABLE transactions ADD COLUMN reversal boolean NOT NULL DEFAULT false;

ALTER TABLE sync_runs
    -- A queued run is not started before this (retry back-off); NULL = at once.
    ADD COLUMN next_attempt_at  timestamptz,
    -- Last time a task for this run was pushed to the queue, and how many pushes so far
    -- (the task id is run id + push number, so a re-push is never mistaken for a duplicate).
    ADD COLUMN enqueued_at      timestamptz,
    ADD COLUMN enqueue_count    integer NOT NULL DEFAULT 0,
    -- The worker running the current attempt, and until when its claim holds unless renewed.
    ADD COLUMN lease_owner      text,
    ADD COLUMN lease_expires_at timestamptz;

-- At most one queued or running sync per connection: a second trigger is coalesced into it.
CREATE UNIQUE INDEX sync_runs_one_active_per_connection
    ON sync_runs (connection_id) WHERE status IN ('queued', 'running');
CREATE INDEX sync_runs_active ON sync_runs (status, next_attempt_at)
    WHERE status IN ('queued', 'running');
-- A failed run is retried at most once (a retry that was cancelled does not count); a failed
-- retry is retried in its turn.
CREATE UNIQUE INDEX sync_runs_retried_once ON sync_runs (retry_of)
    WHERE retry_of IS NOT NULL AND status <> 'cancelled';
CREATE INDEX sync_runs_failed ON sync_runs (tenant_id, status, error_class, queued_at DESC)
    WHERE status IN ('failed', 'dead');

ALTER TABLE bank_connections
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN paused_at            timestamptz,
    ADD COLUMN paused_reason        text;

-- Circuit breaker state per bank endpoint and worker process, as each worker last reported
-- it. Platform data (an endpoint is a custodian's host), no tenant column: the API reads it
-- only for the endpoint of a connection the caller can see.
CREATE TABLE circuit_breakers (
    endpoint             text NOT NULL,
    worker_id            text NOT NULL,
    state                text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures integer NOT NULL DEFAULT 0,
    opened_at            timestamptz,
    open_until           timestamptz,
    rejected_calls       bigint NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, worker_id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON circuit_breakers TO eam_app;

-- Who did what, when, from where. Append-only for the app (no UPDATE or DELETE grant), and
-- chained: each entry's hash covers the previous entry's hash of the same tenant, so an edited
-- or deleted entry breaks the chain (`eam audit verify`).
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text,
    request_id  text,
    source_addr text,
    details     jsonb NOT NULL DEFAULT '{}',
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT ON audit_log TO eam_app;

-- The dispatcher must find due runs of every tenant, which RLS rightly hides from the app.
-- Instead of BYPASSRLS, one function runs as a role that owns nothing but this view: it
-- returns only ids of runs to (re-)push, and marks them pushed so that several workers do not
-- push the same run at once (SKIP LOCKED).
DO $$
BEGIN
    CREATE ROLE eam_dispatch NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
-- A non-superuser owner must be a member of a role to give it a function.
DO $$
BEGIN
    EXECUTE format('GRANT eam_dispatch TO %I', current_user);
EXCEPTION
    WHEN OTHERS THEN NULL;
END
$$;
GRANT USAGE ON SCHEMA public TO eam_dispatch;
GRANT SELECT, UPDATE ON sync_runs TO eam_dispatch;
CREATE POLICY dispatcher_claims ON sync_runs TO eam_dispatch USING (true) WITH CHECK (true);

-- Runs due for a push: queued runs whose retry time has come and that were not pushed since
-- (or were pushed more than `stale_after_secs` ago and never started: the task was lost), and
-- running runs whose lease expired (their worker died). Marks each one pushed.
CREATE FUNCTION claim_due_runs(stale_after_secs integer, max_rows integer)
RETURNS TABLE (run_id uuid, tenant_id uuid, connection_id uuid, status text, enqueue_count integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    WITH due AS (
        SELECT r.id FROM sync_runs r
        WHERE (r.status = 'queued'
               AND coalesce(r.next_attempt_at, r.queued_at) <= now()
               AND (r.enqueued_at IS NULL
                    OR r.enqueued_at < coalesce(r.next_attempt_at, r.queued_at)
                    OR r.enqueued_at < now() - make_interval(secs => stale_after_secs)))
           OR (r.status = 'running' AND r.lease_expires_at < now())
        ORDER BY coalesce(r.next_attempt_at, r.queued_at)
        LIMIT max_rows
        FOR UPDATE SKIP LOCKED
    )
    UPDATE sync_runs r SET enqueued_at = now(), enqueue_count = r.enqueue_count + 1
    FROM due WHERE r.id = due.id
    RETURNING r.id, r.tenant_id, r.connection_id, r.status, r.enqueue_count
$$;
ALTER FUNCTION claim_due_runs(integer, integer) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION claim_due_runs(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_due_runs(integer, integer) TO eam_app;
