-- Issue 17: report schedules. A tenant's statements for every client, once a month on the Nth
-- business day at a wall-clock time in a zone (model::monthly), each covering the month
-- before. Exactly once as for sync schedules (0004): a scheduled time is recorded in
-- report_schedule_fires, keyed (tenant, scheduled time), in the same transaction as the
-- reports it queues, and each report is unique per (tenant, client, scheduled time), so two
-- workers ticking at once queue one statement per client.
CREATE TABLE report_schedules (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants(id),
    business_day  smallint NOT NULL CHECK (business_day BETWEEN 1 AND 20),
    -- Wall-clock time in `timezone`.
    at_time       time NOT NULL,
    timezone      text NOT NULL,
    -- Public holidays of the firm's calendar: not business days.
    holidays      date[] NOT NULL DEFAULT '{}',
    -- NULL: each client's reporting currency.
    currency      char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    formats       text[] NOT NULL CHECK (cardinality(formats) > 0
                      AND formats <@ ARRAY['pdf', 'csv']::text[]),
    enabled       boolean NOT NULL DEFAULT true,
    -- Scheduled times at or before this are never run: a schedule set on the 10th does not
    -- produce the statements of the 2nd it never had.
    since         timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    text
);

CREATE TABLE report_schedule_fires (
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    scheduled_for  timestamptz NOT NULL,
    period_from    date NOT NULL,
    period_to      date NOT NULL,
    -- Statements queued (one per client of the tenant at that time).
    reports        integer NOT NULL CHECK (reports >= 0),
    fired_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, scheduled_for)
);

ALTER TABLE reports DROP CONSTRAINT reports_trigger_check;
ALTER TABLE reports ADD CONSTRAINT reports_trigger_check CHECK (trigger IN ('manual', 'schedule'));
-- The scheduled time a report was queued for (NULL for manual reports).
ALTER TABLE reports ADD COLUMN scheduled_for timestamptz;
ALTER TABLE reports ADD CONSTRAINT reports_scheduled_has_time
    CHECK ((trigger = 'schedule') = (scheduled_for IS NOT NULL));
CREATE UNIQUE INDEX reports_scheduled_once ON reports (tenant_id, client_id, scheduled_for)
    WHERE scheduled_for IS NOT NULL;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['report_schedules', 'report_schedule_fires']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON report_schedules TO eam_app;
-- History: recorded, never edited or deleted.
GRANT SELECT, INSERT ON report_schedule_fires TO eam_app;

-- The scheduler's one cross-tenant read, as scheduled_connections: the enabled schedules of
-- tenants with the reports module on, with the latest time already handled. No data.
GRANT SELECT ON report_schedules, report_schedule_fires TO eam_dispatch;
CREATE POLICY scheduler_reads ON report_schedules FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY scheduler_reads ON report_schedule_fires FOR SELECT TO eam_dispatch USING (true);
GRANT SELECT ON tenant_modules TO eam_dispatch;
CREATE POLICY scheduler_reads ON tenant_modules FOR SELECT TO eam_dispatch USING (true);

CREATE FUNCTION scheduled_report_tenants()
RETURNS TABLE (tenant_id uuid, business_day smallint, at_time time, timezone text,
               holidays date[], since timestamptz, last_scheduled_for timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT s.tenant_id, s.business_day, s.at_time, s.timezone, s.holidays, s.since,
        (SELECT max(f.scheduled_for) FROM report_schedule_fires f WHERE f.tenant_id = s.tenant_id)
    FROM report_schedules s
    WHERE s.enabled
      AND EXISTS (SELECT 1 FROM tenant_modules m
                  WHERE m.tenant_id = s.tenant_id AND m.module = 'reports' AND m.enabled)
    ORDER BY s.tenant_id
$$;
ALTER FUNCTION scheduled_report_tenants() OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION scheduled_report_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scheduled_report_tenants() TO eam_app;
