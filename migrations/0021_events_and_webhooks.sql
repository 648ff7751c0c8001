-- Issue 18: events and webhooks. An event is written by a trigger on the change that causes it,
-- so it exists if and only if that change committed (the outbox); each new event is fanned out,
-- in the same transaction, to a delivery per enabled webhook endpoint of its tenant that asked
-- for its type. Deliveries are claimed by the workers under a lease (at least once: a worker
-- killed mid-delivery leaves its lease to expire and another worker sends it again with the
-- same `webhook-id`, the event id, by which consumers de-duplicate).

CREATE TABLE events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Commit order is not id order: `seq` orders a tenant's events for `GET /events`.
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    type         text NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
    -- What it is about: `run:<id>`, `connection:<id>`, `report:<id>`, `client:<id>`, ...
    subject      text NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);

CREATE TABLE webhook_endpoints (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    url              text NOT NULL CHECK (url ~ '^https?://'),
    description      text,
    event_types      text[] NOT NULL CHECK (cardinality(event_types) > 0),
    enabled          boolean NOT NULL DEFAULT true,
    -- Why the platform disabled it (NULL when a person did, or it is enabled).
    disabled_reason  text,
    -- Since when every delivery to it has failed (NULL after a success).
    failing_since    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

-- An endpoint's signing secrets: the current one (expires_at NULL) and, after a rotation, the
-- previous one until the overlap ends; while both live, both sign.
CREATE TABLE webhook_secrets (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    endpoint_id  uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    secret       text NOT NULL CHECK (secret ~ '^whsec_'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz
);
CREATE UNIQUE INDEX webhook_secrets_current ON webhook_secrets (endpoint_id) WHERE expires_at IS NULL;

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id          uuid NOT NULL REFERENCES events(id),
    -- pending (to send, now or after a back-off), succeeded, failed (given up).
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_status_code  integer,
    last_error        text,
    last_latency_ms   integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

-- Every attempt of a delivery: the delivery log.
CREATE TABLE webhook_attempts (
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    attempted_at  timestamptz NOT NULL,
    status_code   integer,
    latency_ms    integer NOT NULL,
    error         text,
    PRIMARY KEY (delivery_id, attempt)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'webhook_endpoints', 'webhook_secrets',
                             'webhook_deliveries', 'webhook_attempts']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
-- Events are history: written by the triggers below, never edited by the app.
GRANT SELECT ON events TO eam_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints, webhook_secrets TO eam_app;
GRANT SELECT, UPDATE ON webhook_deliveries TO eam_app;
GRANT SELECT, INSERT ON webhook_attempts TO eam_app;

-- The triggers write events with the tenant of the changed row, whoever changed it (a worker
-- in the tenant's transaction, or the dispatcher across tenants): they run as eam_dispatch,
-- allowed to insert events and deliveries of any tenant and to read endpoints to fan out.
GRANT SELECT, INSERT ON events TO eam_dispatch;
GRANT SELECT ON webhook_endpoints, webhook_secrets TO eam_dispatch;
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO eam_dispatch;
GRANT SELECT ON bank_connections, accounts TO eam_dispatch;
CREATE POLICY event_writer ON events TO eam_dispatch USING (true) WITH CHECK (true);
CREATE POLICY event_writer ON webhook_endpoints FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY event_writer ON webhook_secrets FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY event_writer ON webhook_deliveries TO eam_dispatch USING (true) WITH CHECK (true);
CREATE POLICY event_writer ON accounts FOR SELECT TO eam_dispatch USING (true);

-- Writes one event and its deliveries, and wakes the deliverers.
CREATE FUNCTION emit_event(tenant uuid, event_type text, subject text, payload jsonb)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    event uuid;
BEGIN
    INSERT INTO events (tenant_id, type, subject, payload)
        VALUES (tenant, event_type, subject, payload) RETURNING id INTO event;
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id)
        SELECT tenant, e.id, event FROM webhook_endpoints e
        WHERE e.tenant_id = tenant AND e.enabled AND event_type = ANY (e.event_types);
    IF FOUND THEN
        PERFORM pg_notify('eam_webhooks', '');
    END IF;
    RETURN event;
END
$$;
ALTER FUNCTION emit_event(uuid, text, text, jsonb) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION emit_event(uuid, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION emit_event(uuid, text, text, jsonb) TO eam_app;

-- Sync runs: sync.succeeded (endpoints opt in by listing it), sync.succeeded_with_breaks,
-- sync.failed, sync.dead; and portfolio.updated per client whose accounts the run changed.
CREATE FUNCTION sync_run_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    c record;
    changed bigint;
    client uuid;
BEGIN
    SELECT id, name, custodian INTO c FROM bank_connections WHERE id = NEW.connection_id;
    PERFORM emit_event(NEW.tenant_id, 'sync.' || NEW.status, 'run:' || NEW.id,
        jsonb_build_object(
            'run_id', NEW.id, 'connection_id', NEW.connection_id,
            'connection_name', c.name, 'custodian', c.custodian, 'status', NEW.status,
            'trigger', NEW.trigger, 'attempts', NEW.attempts,
            'error', CASE WHEN NEW.error_class IS NULL THEN NULL ELSE
                jsonb_build_object('class', NEW.error_class, 'message', NEW.error_message) END,
            'scheduled_for', NEW.scheduled_for, 'finished_at', NEW.finished_at));
    IF NEW.status IN ('succeeded', 'succeeded_with_breaks') THEN
        SELECT coalesce(sum(coalesce((NEW.counts -> k ->> 'inserted')::bigint, 0)
                          + coalesce((NEW.counts -> k ->> 'updated')::bigint, 0)), 0)
               + coalesce((NEW.counts ->> 'positions_closed')::bigint, 0)
            INTO changed
            FROM unnest(ARRAY['accounts', 'positions', 'balances', 'transactions']) AS k;
        IF changed > 0 THEN
            FOR client IN
                SELECT DISTINCT a.client_id FROM accounts a
                WHERE a.connection_id = NEW.connection_id AND a.client_id IS NOT NULL
                ORDER BY a.client_id
            LOOP
                PERFORM emit_event(NEW.tenant_id, 'portfolio.updated', 'client:' || client,
                    jsonb_build_object('client_id', client, 'run_id', NEW.id,
                        'connection_id', NEW.connection_id, 'counts', NEW.counts));
            END LOOP;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION sync_run_events() OWNER TO eam_dispatch;
CREATE TRIGGER sync_run_events AFTER UPDATE OF status ON sync_runs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('succeeded', 'succeeded_with_breaks', 'failed', 'dead'))
    EXECUTE FUNCTION sync_run_events();

-- Connections paused and resumed.
CREATE FUNCTION connection_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM emit_event(NEW.tenant_id,
        CASE WHEN NEW.enabled THEN 'connection.resumed' ELSE 'connection.paused' END,
        'connection:' || NEW.id,
        jsonb_build_object('connection_id', NEW.id, 'connection_name', NEW.name,
            'custodian', NEW.custodian, 'enabled', NEW.enabled));
    RETURN NULL;
END
$$;
ALTER FUNCTION connection_events() OWNER TO eam_dispatch;
CREATE TRIGGER connection_events AFTER UPDATE OF enabled ON bank_connections
    FOR EACH ROW WHEN (OLD.enabled IS DISTINCT FROM NEW.enabled)
    EXECUTE FUNCTION connection_events();

-- Reconciliation breaks.
CREATE FUNCTION break_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM emit_event(NEW.tenant_id, 'break.opened', 'break:' || NEW.id,
        jsonb_build_object('break_id', NEW.id, 'kind', NEW.kind, 'run_id', NEW.run_id,
            'connection_id', NEW.connection_id, 'account_id', NEW.account_id,
            'account_ref', NEW.account_ref, 'currency', NEW.currency,
            'expected', NEW.expected, 'actual', NEW.actual, 'message', NEW.message));
    RETURN NULL;
END
$$;
ALTER FUNCTION break_events() OWNER TO eam_dispatch;
CREATE TRIGGER break_events AFTER INSERT ON reconciliation_breaks
    FOR EACH ROW EXECUTE FUNCTION break_events();

-- Reports ready.
CREATE FUNCTION report_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM emit_event(NEW.tenant_id, 'report.ready', 'report:' || NEW.id,
        jsonb_build_object('report_id', NEW.id, 'client_id', NEW.client_id,
            'kind', NEW.kind, 'period_from', NEW.period_from, 'period_to', NEW.period_to,
            'formats', to_jsonb(NEW.formats), 'trigger', NEW.trigger));
    RETURN NULL;
END
$$;
ALTER FUNCTION report_events() OWNER TO eam_dispatch;
CREATE TRIGGER report_events AFTER UPDATE OF status ON reports
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'succeeded')
    EXECUTE FUNCTION report_events();

-- The deliverers' one cross-tenant read: due deliveries of enabled endpoints, leased to
-- `owner` until `at` + lease, with what sending needs (the URL, the event, the live secrets).
CREATE FUNCTION claim_webhook_deliveries(owner text, at timestamptz, lease_secs integer,
                                         max_rows integer)
RETURNS TABLE (delivery_id uuid, tenant_id uuid, endpoint_id uuid, url text, event_id uuid,
               event_type text, payload jsonb, occurred_at timestamptz, attempts integer,
               secrets text[])
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= at AND e.enabled
          AND (d.lease_expires_at IS NULL OR d.lease_expires_at < at)
        ORDER BY d.next_attempt_at
        LIMIT max_rows
        FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE webhook_deliveries d
        SET lease_owner = owner, lease_expires_at = at + make_interval(secs => lease_secs)
        FROM due WHERE d.id = due.id
        RETURNING d.*
    )
    SELECT l.id, l.tenant_id, l.endpoint_id, e.url, ev.id, ev.type, ev.payload, ev.occurred_at,
        l.attempts,
        ARRAY(SELECT s.secret FROM webhook_secrets s
              WHERE s.endpoint_id = l.endpoint_id AND (s.expires_at IS NULL OR s.expires_at > at)
              ORDER BY s.created_at DESC)
    FROM leased l
    JOIN webhook_endpoints e ON e.id = l.endpoint_id
    JOIN events ev ON ev.id = l.event_id
$$;
ALTER FUNCTION claim_webhook_deliveries(text, timestamptz, integer, integer) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION claim_webhook_deliveries(text, timestamptz, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_webhook_deliveries(text, timestamptz, integer, integer) TO eam_app;
