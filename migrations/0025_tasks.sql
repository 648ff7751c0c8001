-- Issue 19: tasks, support's worklist. Created from the events (so a task exists if and only
-- if its cause committed) by a trigger on `events`: a run that ends failed or dead, a
-- reconciliation break, a certificate at risk. One open task per cause: a second failure of
-- the same connection updates its task (occurrences, the latest run) and does not add one.
-- The connection's next successful sync resolves it, and its history says so. Resolving a
-- task never changes the run or break it points to.

-- Hours to act on a task of each kind (its `due_at`), and its priority: the platform's
-- defaults, changed here by the operator.
CREATE TABLE task_slas (
    kind      text PRIMARY KEY,
    hours     integer NOT NULL CHECK (hours > 0),
    priority  text NOT NULL CHECK (priority IN ('high', 'normal', 'low'))
);
INSERT INTO task_slas (kind, hours, priority) VALUES
    ('sync_dead', 4, 'high'),
    ('sync_failed', 8, 'normal'),
    ('break', 24, 'normal'),
    ('certificate', 72, 'high');
GRANT SELECT ON task_slas TO eam_app, eam_dispatch;

CREATE TABLE tasks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    kind             text NOT NULL CHECK (kind IN ('sync_failed', 'sync_dead', 'break', 'certificate')),
    -- What the task is about, one open task each: `connection:<id>` (syncs),
    -- `break:<id>`, `certificate:<connection id>`.
    cause            text NOT NULL,
    -- The latest thing it points to: `run:<id>`, `break:<id>`, `connection:<id>`.
    subject          text NOT NULL,
    connection_id    uuid,
    -- The client it concerns, when there is one (a break on a client's account): advisors
    -- see those.
    client_id        uuid,
    title            text NOT NULL,
    priority         text NOT NULL CHECK (priority IN ('high', 'normal', 'low')),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'in_progress', 'resolved', 'dismissed')),
    due_at           timestamptz NOT NULL,
    assignee         text,
    occurrences      integer NOT NULL DEFAULT 1,
    resolution_note  text,
    closed_by        text,
    closed_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE UNIQUE INDEX tasks_one_open_per_cause ON tasks (tenant_id, cause)
    WHERE status IN ('open', 'in_progress');
CREATE INDEX tasks_listing ON tasks (tenant_id, seq DESC);

-- Everything that happened to a task, comments included.
CREATE TABLE task_history (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants(id),
    task_id    uuid NOT NULL REFERENCES tasks(id),
    at         timestamptz NOT NULL DEFAULT now(),
    -- A user's subject, or `system`.
    actor      text NOT NULL,
    action     text NOT NULL CHECK (action IN ('created', 'recurred', 'assigned', 'commented',
                                               'resolved', 'dismissed', 'auto_resolved')),
    note       text
);
CREATE INDEX task_history_task ON task_history (task_id, seq);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tasks', 'task_history']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
        EXECUTE format('CREATE POLICY task_writer ON %I TO eam_dispatch USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$$;
GRANT SELECT, UPDATE ON tasks TO eam_app;
GRANT SELECT, INSERT ON task_history TO eam_app;
GRANT SELECT, INSERT, UPDATE ON tasks, task_history TO eam_dispatch;
GRANT SELECT ON reconciliation_breaks TO eam_dispatch;
CREATE POLICY task_writer ON reconciliation_breaks FOR SELECT TO eam_dispatch USING (true);

-- Opens the task of a cause, or counts one more occurrence on the open one.
CREATE FUNCTION open_task(tenant uuid, task_kind text, task_cause text, task_subject text,
                          connection uuid, client uuid, task_title text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    sla record;
    task uuid;
BEGIN
    SELECT hours, priority INTO sla FROM task_slas WHERE kind = task_kind;
    UPDATE tasks SET occurrences = occurrences + 1, subject = task_subject, title = task_title,
        -- A dead run raises a failed-sync task to the dead one's kind and priority.
        kind = CASE WHEN task_kind = 'sync_dead' THEN 'sync_dead' ELSE kind END,
        priority = CASE WHEN task_kind = 'sync_dead' THEN sla.priority ELSE priority END,
        updated_at = now()
    WHERE tenant_id = tenant AND cause = task_cause AND status IN ('open', 'in_progress')
    RETURNING id INTO task;
    IF task IS NOT NULL THEN
        INSERT INTO task_history (tenant_id, task_id, actor, action, note)
            VALUES (tenant, task, 'system', 'recurred', task_title || ' (' || task_subject || ')');
        RETURN;
    END IF;
    INSERT INTO tasks (tenant_id, kind, cause, subject, connection_id, client_id, title,
                       priority, due_at)
        VALUES (tenant, task_kind, task_cause, task_subject, connection, client, task_title,
                sla.priority, now() + make_interval(hours => sla.hours))
        RETURNING id INTO task;
    INSERT INTO task_history (tenant_id, task_id, actor, action, note)
        VALUES (tenant, task, 'system', 'created', task_title || ' (' || task_subject || ')');
END
$$;
ALTER FUNCTION open_task(uuid, text, text, text, uuid, uuid, text) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION open_task(uuid, text, text, text, uuid, uuid, text) FROM PUBLIC;

CREATE FUNCTION event_tasks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    p jsonb := NEW.payload;
    task uuid;
BEGIN
    IF NEW.type IN ('sync.failed', 'sync.dead') THEN
        PERFORM open_task(NEW.tenant_id,
            CASE NEW.type WHEN 'sync.dead' THEN 'sync_dead' ELSE 'sync_failed' END,
            'connection:' || (p ->> 'connection_id'), NEW.subject,
            (p ->> 'connection_id')::uuid, NULL,
            format('Sync of %s (%s) %s: %s', p ->> 'connection_name', p ->> 'custodian',
                   CASE NEW.type WHEN 'sync.dead' THEN 'is dead' ELSE 'failed' END,
                   coalesce(p -> 'error' ->> 'message', 'no error recorded')));
    ELSIF NEW.type = 'break.opened' THEN
        PERFORM open_task(NEW.tenant_id, 'break', NEW.subject, NEW.subject,
            (p ->> 'connection_id')::uuid,
            (SELECT a.client_id FROM accounts a WHERE a.id = (p ->> 'account_id')::uuid),
            format('%s break on %s: %s', initcap(p ->> 'kind'), p ->> 'account_ref',
                   p ->> 'message'));
    ELSIF NEW.type = 'certificate.expiring' THEN
        PERFORM open_task(NEW.tenant_id, 'certificate',
            'certificate:' || (p ->> 'connection_id'), NEW.subject,
            (p ->> 'connection_id')::uuid, NULL,
            format('Client certificate of %s (%s) %s on %s', p ->> 'connection_name',
                   p ->> 'custodian',
                   CASE p ->> 'status' WHEN 'expired' THEN 'expired' ELSE 'expires' END,
                   p ->> 'not_after'));
    ELSIF NEW.type IN ('sync.succeeded', 'sync.succeeded_with_breaks') THEN
        FOR task IN
            UPDATE tasks SET status = 'resolved', closed_by = 'system', closed_at = now(),
                resolution_note = 'the connection''s next sync (' || NEW.subject || ') succeeded',
                updated_at = now()
            WHERE tenant_id = NEW.tenant_id AND cause = 'connection:' || (p ->> 'connection_id')
              AND status IN ('open', 'in_progress')
            RETURNING id
        LOOP
            INSERT INTO task_history (tenant_id, task_id, actor, action, note)
                VALUES (NEW.tenant_id, task, 'system', 'auto_resolved',
                        'the connection''s next sync (' || NEW.subject || ') succeeded');
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION event_tasks() OWNER TO eam_dispatch;
CREATE TRIGGER event_tasks AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION event_tasks();
