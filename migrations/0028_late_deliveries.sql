-- Issue 19: a bank delivery that is late. A connection's latest scheduled sync (a time the
-- scheduler handled, see schedule_fires) that is more than the grace period old with no
-- successful sync of the connection since: the night's data did not arrive (the run failed,
-- is still waiting on the bank, or the time was missed during an outage). Told once per
-- scheduled time (`delivery.late`), a task of its own until the connection's next sync
-- succeeds. A paused connection is not late: someone stopped it.

CREATE TABLE delivery_warnings (
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    connection_id  uuid NOT NULL REFERENCES bank_connections(id) ON DELETE CASCADE,
    scheduled_for  timestamptz NOT NULL,
    flagged_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, scheduled_for)
);
ALTER TABLE delivery_warnings ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_warnings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON delivery_warnings USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY late_flagger ON delivery_warnings TO eam_dispatch USING (true) WITH CHECK (true);
GRANT SELECT ON delivery_warnings TO eam_app;
GRANT SELECT, INSERT ON delivery_warnings TO eam_dispatch;

-- The schedulers' cross-tenant check: flags every late delivery not flagged yet, emits its
-- event, answers how many.
CREATE FUNCTION flag_late_deliveries(grace interval) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    flagged integer := 0;
    d record;
BEGIN
    FOR d IN
        WITH latest AS (
            SELECT DISTINCT ON (f.connection_id) f.tenant_id, f.connection_id, f.scheduled_for,
                   f.outcome, f.run_id
            FROM schedule_fires f
            ORDER BY f.connection_id, f.scheduled_for DESC
        )
        SELECT l.*, c.name, c.custodian, r.status AS run_status,
               (SELECT max(s.finished_at) FROM sync_runs s
                WHERE s.connection_id = l.connection_id
                  AND s.status IN ('succeeded', 'succeeded_with_breaks')) AS last_success
        FROM latest l
        JOIN bank_connections c ON c.id = l.connection_id
        LEFT JOIN sync_runs r ON r.id = l.run_id
        WHERE l.scheduled_for <= now() - grace AND l.outcome <> 'paused' AND c.paused_at IS NULL
    LOOP
        CONTINUE WHEN d.last_success >= d.scheduled_for;
        INSERT INTO delivery_warnings (tenant_id, connection_id, scheduled_for)
            VALUES (d.tenant_id, d.connection_id, d.scheduled_for) ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        PERFORM emit_event(d.tenant_id, 'delivery.late', 'connection:' || d.connection_id,
            jsonb_build_object('connection_id', d.connection_id, 'connection_name', d.name,
                'custodian', d.custodian, 'scheduled_for', d.scheduled_for,
                'run_id', d.run_id, 'last_success_at', d.last_success,
                'reason', CASE WHEN d.outcome = 'missed' THEN 'the scheduled sync was missed'
                               ELSE 'its run is ' || coalesce(d.run_status, 'gone') END));
        flagged := flagged + 1;
    END LOOP;
    RETURN flagged;
END
$$;
ALTER FUNCTION flag_late_deliveries(interval) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION flag_late_deliveries(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flag_late_deliveries(interval) TO eam_app;

INSERT INTO task_slas (kind, hours, priority) VALUES ('delivery_late', 4, 'high');
ALTER TABLE tasks DROP CONSTRAINT tasks_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_check
    CHECK (kind IN ('sync_failed', 'sync_dead', 'break', 'certificate', 'delivery_late'));

-- A late delivery's task, resolved by the connection's next successful sync.
CREATE FUNCTION delivery_tasks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    p jsonb := NEW.payload;
    task uuid;
BEGIN
    IF NEW.type = 'delivery.late' THEN
        PERFORM open_task(NEW.tenant_id, 'delivery_late',
            'delivery:' || (p ->> 'connection_id'), NEW.subject,
            (p ->> 'connection_id')::uuid, NULL,
            format('No data from %s (%s) since the sync scheduled for %s: %s',
                   p ->> 'connection_name', p ->> 'custodian', p ->> 'scheduled_for',
                   p ->> 'reason'));
    ELSE
        FOR task IN
            UPDATE tasks SET status = 'resolved', closed_by = 'system', closed_at = now(),
                resolution_note = 'the connection''s next sync (' || NEW.subject || ') delivered',
                updated_at = now()
            WHERE tenant_id = NEW.tenant_id AND cause = 'delivery:' || (p ->> 'connection_id')
              AND status IN ('open', 'in_progress')
            RETURNING id
        LOOP
            INSERT INTO task_history (tenant_id, task_id, actor, action, note)
                VALUES (NEW.tenant_id, task, 'system', 'auto_resolved',
                        'the connection''s next sync (' || NEW.subject || ') delivered');
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION delivery_tasks() OWNER TO eam_dispatch;
CREATE TRIGGER delivery_tasks AFTER INSERT ON events FOR EACH ROW
    WHEN (NEW.type IN ('delivery.late', 'sync.succeeded', 'sync.succeeded_with_breaks'))
    EXECUTE FUNCTION delivery_tasks();

INSERT INTO event_type_roles (type, role)
SELECT 'delivery.late', r FROM unnest(ARRAY['tenant_admin', 'ops', 'support']) AS r
ON CONFLICT DO NOTHING;
