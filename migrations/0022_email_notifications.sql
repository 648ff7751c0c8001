-- Issue 18: e-mail. Users subscribe to event types their roles may receive; each event is
-- fanned out, in the transaction that writes it, to an e-mail notification per subscribed
-- user with an address (client users only for their own client's events). Urgent types go
-- out at once, the others in one digest per user per digest time. Tenant admins are told of
-- a disabled webhook endpoint whether subscribed or not.

-- Which roles may receive which event types.
CREATE TABLE event_type_roles (
    type  text NOT NULL,
    role  text NOT NULL,
    PRIMARY KEY (type, role)
);
INSERT INTO event_type_roles (type, role)
SELECT t, r FROM unnest(ARRAY['sync.succeeded', 'sync.succeeded_with_breaks', 'sync.failed',
                              'sync.dead', 'connection.paused', 'connection.resumed',
                              'break.opened', 'webhook.endpoint_disabled']) AS t,
              unnest(ARRAY['tenant_admin', 'ops', 'support']) AS r
UNION ALL
SELECT t, r FROM unnest(ARRAY['report.ready', 'portfolio.updated', 'break.opened']) AS t,
              unnest(ARRAY['tenant_admin', 'advisor']) AS r
UNION ALL
SELECT t, 'client' FROM unnest(ARRAY['report.ready', 'portfolio.updated']) AS t
ON CONFLICT DO NOTHING;
GRANT SELECT ON event_type_roles TO eam_app, eam_dispatch;

CREATE TABLE notification_subscriptions (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    user_id      uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    event_types  text[] NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE email_notifications (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants(id),
    user_id           uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_id          uuid NOT NULL REFERENCES events(id),
    -- At once (sync.dead, certificate.expiring, webhook.endpoint_disabled), else in the digest.
    urgent            boolean NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    UNIQUE (user_id, event_id)
);
CREATE INDEX email_notifications_due ON email_notifications (created_at) WHERE status = 'pending';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notification_subscriptions', 'email_notifications']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_subscriptions TO eam_app;
GRANT SELECT, UPDATE ON email_notifications TO eam_app;

GRANT SELECT ON notification_subscriptions, users TO eam_dispatch;
GRANT SELECT, INSERT, UPDATE ON email_notifications TO eam_dispatch;
CREATE POLICY event_writer ON notification_subscriptions FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY event_writer ON users FOR SELECT TO eam_dispatch USING (true);
CREATE POLICY event_writer ON email_notifications TO eam_dispatch USING (true) WITH CHECK (true);

CREATE OR REPLACE FUNCTION emit_event(tenant uuid, event_type text, subject text, payload jsonb)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    event uuid;
    client text := payload ->> 'client_id';
BEGIN
    INSERT INTO events (tenant_id, type, subject, payload)
        VALUES (tenant, event_type, subject, payload) RETURNING id INTO event;
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id)
        SELECT tenant, e.id, event FROM webhook_endpoints e
        WHERE e.tenant_id = tenant AND e.enabled AND event_type = ANY (e.event_types);
    IF FOUND THEN
        PERFORM pg_notify('eam_webhooks', '');
    END IF;
    INSERT INTO email_notifications (tenant_id, user_id, event_id, urgent)
        SELECT tenant, u.id, event,
               event_type IN ('sync.dead', 'certificate.expiring', 'webhook.endpoint_disabled')
        FROM users u
        LEFT JOIN notification_subscriptions s ON s.user_id = u.id
        WHERE u.tenant_id = tenant AND NOT u.disabled AND coalesce(u.email, '') <> ''
          AND (event_type = ANY (coalesce(s.event_types, '{}'))
               OR (event_type = 'webhook.endpoint_disabled' AND 'tenant_admin' = ANY (u.roles)))
          AND EXISTS (SELECT 1 FROM event_type_roles r
                      WHERE r.type = event_type AND r.role = ANY (u.roles))
          -- A client user hears only of its own client, and only of client events.
          AND (u.client_id IS NULL OR u.client_id::text = client);
    IF FOUND THEN
        PERFORM pg_notify('eam_mail', '');
    END IF;
    RETURN event;
END
$$;

-- The mailers' cross-tenant read: pending notifications due at `at` (urgent ones, and the
-- others created at or before `digest_cutoff`), leased to `owner`, with the user's address
-- and the event.
CREATE FUNCTION claim_email_notifications(owner text, at timestamptz, digest_cutoff timestamptz,
                                          lease_secs integer, max_rows integer)
RETURNS TABLE (notification_id uuid, tenant_id uuid, user_id uuid, email text, urgent boolean,
               attempts integer, event_id uuid, event_type text, payload jsonb,
               occurred_at timestamptz, tenant_name text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    WITH due AS (
        SELECT n.id FROM email_notifications n
        WHERE n.status = 'pending' AND n.next_attempt_at <= at
          AND (n.urgent OR n.created_at <= digest_cutoff)
          AND (n.lease_expires_at IS NULL OR n.lease_expires_at < at)
        ORDER BY n.created_at
        LIMIT max_rows
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE email_notifications n
        SET lease_owner = owner, lease_expires_at = at + make_interval(secs => lease_secs)
        FROM due WHERE n.id = due.id
        RETURNING n.*
    )
    SELECT l.id, l.tenant_id, l.user_id, u.email, l.urgent, l.attempts, e.id, e.type,
        e.payload, e.occurred_at, t.name
    FROM leased l
    JOIN users u ON u.id = l.user_id
    JOIN events e ON e.id = l.event_id
    JOIN tenants t ON t.id = l.tenant_id
    ORDER BY l.user_id, e.seq
$$;
GRANT SELECT ON tenants TO eam_dispatch;
CREATE POLICY mailer_reads ON tenants FOR SELECT TO eam_dispatch USING (true);
ALTER FUNCTION claim_email_notifications(text, timestamptz, timestamptz, integer, integer)
    OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION claim_email_notifications(text, timestamptz, timestamptz, integer, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_email_notifications(text, timestamptz, timestamptz, integer, integer)
    TO eam_app;
