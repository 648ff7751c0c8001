-- Schedules (issue 6): a cron expression and time zone per bank connection and a tenant-wide
-- default; the record of every scheduled time handled, whose key (connection, scheduled time)
-- makes each scheduled sync happen exactly once however many schedulers tick; the scheduler's
-- narrow cross-tenant view of schedules; and the count behind the per-custodian limit.

ALTER TABLE bank_connections
    -- A paused schedule: the connection is not synced on schedule, but still on demand.
    -- (bank_connections.enabled = false pauses the connection altogether.)
    ADD COLUMN schedule_enabled boolean NOT NULL DEFAULT true,
    -- Scheduled times at or before this are never run: a schedule set (or a connection created)
    -- at 10:00 does not "catch up" the 02:00 run it never had.
    ADD COLUMN schedule_since timestamptz NOT NULL DEFAULT now(),
    -- A connection has its own schedule (both columns) or follows the tenant's default (neither).
    ADD CONSTRAINT bank_connections_schedule_complete
        CHECK ((schedule_cron IS NULL) = (schedule_tz IS NULL));

-- The schedule of every connection of the tenant that has none of its own.
CREATE TABLE schedule_defaults (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants(id),
    cron        text NOT NULL,
    timezone    text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);

-- The scheduled time a run was started for (NULL for manual runs and retries).
ALTER TABLE sync_runs ADD COLUMN scheduled_for timestamptz;

-- Every scheduled time handled, once: a new run (enqueued), the connection's run already
-- queued or running (coalesced), the connection paused, or the time found too late to catch up
-- (missed). The primary key is what makes a scheduled sync happen exactly once: a second
-- scheduler handling the same time conflicts here and rolls its run back.
CREATE TABLE schedule_fires (
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    -- A connection that never synced may be deleted; the times it let pass go with it.
    connection_id   uuid NOT NULL REFERENCES bank_connections(id) ON DELETE CASCADE,
    scheduled_for   timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('enqueued', 'coalesced', 'paused', 'missed')),
    run_id          uuid REFERENCES sync_runs(id),
    fired_at        timestamptz NOT NULL,
    PRIMARY KEY (connection_id, scheduled_for),
    CHECK ((run_id IS NOT NULL) = (outcome IN ('enqueued', 'coalesced')))
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['schedule_defaults', 'schedule_fires']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON schedule_defaults TO eam_app;
-- History: the app records scheduled times, never edits or deletes them.
GRANT SELECT, INSERT ON schedule_fires TO eam_app;

-- The scheduler must see the schedules of every tenant, which RLS rightly hides from the app.
-- As for claim_due_runs: one function, owned by eam_dispatch, reading only what a tick needs.
GRANT SELECT ON bank_connections, schedule_defaults, schedule_fires TO eam_dispatch;
CREATE POLICY scheduler_reads ON bank_connections FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY scheduler_reads ON schedule_defaults FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY scheduler_reads ON schedule_fires FOR SELECT TO eam_dispatch USING (true);

-- Connections with an active schedule (their own, or the tenant's default), paged by id: the
-- schedule, the time it took effect, and the latest scheduled time already handled. Paused
-- connections are included: their scheduled times are recorded as paused, not caught up on
-- resume. No secrets, no data.
CREATE FUNCTION scheduled_connections(after_id uuid, max_rows integer)
RETURNS TABLE (tenant_id uuid, connection_id uuid, connection_name text, custodian text,
               connection_enabled boolean, cron text, timezone text, since timestamptz,
               last_scheduled_for timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT c.tenant_id, c.id, c.name, c.custodian, c.enabled,
        coalesce(c.schedule_cron, d.cron), coalesce(c.schedule_tz, d.timezone),
        CASE WHEN c.schedule_cron IS NULL THEN greatest(c.schedule_since, d.updated_at)
             ELSE c.schedule_since END,
        (SELECT max(f.scheduled_for) FROM schedule_fires f WHERE f.connection_id = c.id)
    FROM bank_connections c
    LEFT JOIN schedule_defaults d ON d.tenant_id = c.tenant_id
    WHERE c.schedule_enabled
      AND (c.schedule_cron IS NOT NULL OR coalesce(d.enabled, false))
      AND (after_id IS NULL OR c.id > after_id)
    ORDER BY c.id
    LIMIT max_rows
$$;
ALTER FUNCTION scheduled_connections(uuid, integer) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION scheduled_connections(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scheduled_connections(uuid, integer) TO eam_app;

-- The per-custodian concurrency limit: whether fewer than max_running syncs of the
-- connection's custodian are running, across every tenant and worker. It takes a
-- transaction-level advisory lock per custodian first, so the caller's start of its run (in
-- the same transaction) and every other start of that custodian's runs are serialised until
-- the caller commits: two workers cannot both take the last slot. Each statement of a
-- plpgsql function sees what committed before it ran, so the count sees the run the previous
-- lock holder started.
CREATE FUNCTION custodian_has_free_slot(connection uuid, max_running integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    custodian_code text;
    running integer;
BEGIN
    SELECT c.custodian INTO custodian_code FROM bank_connections c WHERE c.id = connection;
    IF custodian_code IS NULL THEN
        RETURN true;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('eam.custodian_slots:' || custodian_code, 0));
    SELECT count(*) INTO running
        FROM sync_runs r JOIN bank_connections c ON c.id = r.connection_id
        WHERE r.status = 'running' AND c.custodian = custodian_code;
    RETURN running < max_running;
END
$$;
ALTER FUNCTION custodian_has_free_slot(uuid, integer) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION custodian_has_free_slot(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodian_has_free_slot(uuid, integer) TO eam_app;
