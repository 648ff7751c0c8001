-- Issue 18: `breaker.opened` and `breaker.closed`. Breakers are per worker process and bank
-- endpoint (circuit_breakers, platform data); a tenant hears about an endpoint its
-- connections use, once per change of the endpoint as a whole: opened when the first worker's
-- breaker for it leaves `closed`, closed when the last one is back (or its worker stopped).
-- The events commit with the worker's report that changed the endpoint's state.

-- `scheme://host:port` of a URL, as `eam_model::endpoint_of` writes it (the key of
-- circuit_breakers): lower-case scheme and host, the scheme's default port when none is given.
CREATE FUNCTION url_endpoint(url text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN m IS NULL THEN url
           ELSE lower(m[1]) || '://' || lower(m[2]) || ':' ||
                coalesce(ltrim(m[3], '0'),
                         CASE lower(m[1]) WHEN 'https' THEN '443' WHEN 'http' THEN '80' ELSE '0' END)
           END
    FROM (SELECT regexp_match(url,
            '^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/?#]*@)?(\[[^]]*\]|[^:/?#]*)(?::([0-9]+))?') AS m) s
$$;

-- Whether each endpoint is open as a whole, as last told: what a report is compared with.
CREATE TABLE endpoint_breakers (
    endpoint    text PRIMARY KEY,
    open        boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION breaker_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    ep text;
    until timestamptz;
    was_open boolean;
    now_open boolean;
    workers_open integer;
    t record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        ep := OLD.endpoint;
    ELSE
        ep := NEW.endpoint;
        until := NEW.open_until;
    END IF;
    -- One decision per endpoint at a time: concurrent reports of two workers queue here.
    INSERT INTO endpoint_breakers (endpoint, open) VALUES (ep, false) ON CONFLICT DO NOTHING;
    SELECT b.open INTO was_open FROM endpoint_breakers b WHERE b.endpoint = ep FOR UPDATE;
    SELECT count(*) INTO workers_open FROM circuit_breakers c
        WHERE c.endpoint = ep AND c.state <> 'closed';
    now_open := workers_open > 0;
    IF now_open = was_open THEN
        RETURN NULL;
    END IF;
    UPDATE endpoint_breakers SET open = now_open, changed_at = now() WHERE endpoint = ep;
    FOR t IN
        SELECT c.tenant_id,
               jsonb_agg(jsonb_build_object('connection_id', c.id, 'connection_name', c.name,
                                            'custodian', c.custodian) ORDER BY c.name) AS connections,
               min(c.custodian) AS custodian
        FROM bank_connections c JOIN custodians cu ON cu.code = c.custodian
        WHERE url_endpoint(coalesce(c.base_url, cu.base_url)) = ep
        GROUP BY c.tenant_id
    LOOP
        PERFORM emit_event(t.tenant_id,
            CASE WHEN now_open THEN 'breaker.opened' ELSE 'breaker.closed' END,
            'breaker:' || ep,
            jsonb_build_object('endpoint', ep, 'custodian', t.custodian,
                'connections', t.connections, 'workers_open', workers_open,
                'reason', CASE WHEN now_open THEN 'calls to the bank keep failing: syncs wait'
                               WHEN TG_OP = 'DELETE' THEN 'the worker whose breaker was open stopped'
                               ELSE 'the bank answers again' END,
                'open_until', until));
    END LOOP;
    RETURN NULL;
END
$$;
ALTER FUNCTION breaker_events() OWNER TO eam_dispatch;
GRANT SELECT, INSERT, UPDATE ON endpoint_breakers TO eam_dispatch;
GRANT SELECT ON circuit_breakers TO eam_dispatch;
CREATE TRIGGER breaker_events AFTER INSERT OR UPDATE OF state OR DELETE ON circuit_breakers
    FOR EACH ROW EXECUTE FUNCTION breaker_events();

INSERT INTO event_type_roles (type, role)
SELECT t, r FROM unnest(ARRAY['breaker.opened', 'breaker.closed']) AS t,
              unnest(ARRAY['tenant_admin', 'ops', 'support']) AS r
ON CONFLICT DO NOTHING;
