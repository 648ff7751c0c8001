-- Issue 19: four-eyes approvals. A sensitive action the tenant's policy names is not done on
-- request: the request is stored with its full parameters and its requester, and done
-- (exactly once, in the transaction that records the approval) only when a different user
-- with the right to do it approves. Requests expire.

-- Which actions need a second pair of eyes, per tenant. No row: every one of them.
CREATE TABLE approval_policies (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants(id),
    actions     text[] NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE approvals (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    -- `connection.credentials`, `jobs.bulk_retry`, `jobs.replay`, `users.roles`,
    -- `clients.delete`, `webhooks.change`, `approvals.policy`.
    action         text NOT NULL,
    -- What it acts on (`job:<id>`, `user:<id>`, `webhook:<id>`, `jobs`, ...).
    target         text NOT NULL,
    -- One line for the approver: what will be done.
    summary        text NOT NULL,
    -- The request as made: path parameters and body, re-read when it is executed.
    params         jsonb NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'executed', 'rejected', 'expired')),
    requested_by   text NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    request_id     text,
    expires_at     timestamptz NOT NULL,
    decided_by     text,
    decided_at     timestamptz,
    decision_note  text,
    -- What the execution answered (never a secret).
    result         jsonb,
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (status NOT IN ('executed', 'rejected') OR decided_by IS NOT NULL),
    -- Four eyes: whoever decides is not who asked (an expiry is decided by nobody).
    CHECK (decided_by IS DISTINCT FROM requested_by)
);
CREATE INDEX approvals_listing ON approvals (tenant_id, seq DESC);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['approval_policies', 'approvals']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())'
                       ' WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE ON approval_policies, approvals TO eam_app;

-- `approval.requested`, in the transaction that stores the request.
CREATE FUNCTION approval_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM emit_event(NEW.tenant_id, 'approval.requested', 'approval:' || NEW.id,
        jsonb_build_object('approval_id', NEW.id, 'action', NEW.action, 'target', NEW.target,
            'summary', NEW.summary, 'requested_by', NEW.requested_by,
            'expires_at', NEW.expires_at));
    RETURN NULL;
END
$$;
ALTER FUNCTION approval_events() OWNER TO eam_dispatch;
CREATE TRIGGER approval_events AFTER INSERT ON approvals
    FOR EACH ROW EXECUTE FUNCTION approval_events();

INSERT INTO event_type_roles (type, role)
SELECT 'approval.requested', r FROM unnest(ARRAY['tenant_admin', 'ops', 'support']) AS r
ON CONFLICT DO NOTHING;
