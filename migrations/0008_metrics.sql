-- Metrics (issue 8): the cross-tenant counts Prometheus scrapes. RLS rightly shows the app one
-- tenant at a time; as for claim_due_runs, narrow functions owned by eam_dispatch return
-- counts per custodian and nothing else (no ids, no names, no tenant).

GRANT SELECT ON custodians TO eam_dispatch;

-- Runs waiting for or in a worker, per custodian: `queued` (due, waiting for a worker),
-- `waiting` (queued but not due before its next attempt time: retry back-off, the custodian's
-- limit, a schedule's spread) and `running`. Every custodian and state has a row, zeros
-- included. Reads only active runs, through the partial index sync_runs_active (at most one
-- per connection), never the history.
CREATE FUNCTION metrics_active_runs()
RETURNS TABLE (custodian text, state text, runs bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    WITH active AS (
        SELECT c.custodian,
            CASE WHEN r.status = 'running' THEN 'running'
                 WHEN coalesce(r.next_attempt_at, r.queued_at) > now() THEN 'waiting'
                 ELSE 'queued' END AS state
        FROM sync_runs r JOIN bank_connections c ON c.id = r.connection_id
        WHERE r.status IN ('queued', 'running')
    )
    SELECT k.code, s.state, count(a.state)
    FROM custodians k
    CROSS JOIN (VALUES ('queued'), ('waiting'), ('running')) AS s(state)
    LEFT JOIN active a ON a.custodian = k.code AND a.state = s.state
    GROUP BY k.code, s.state
    ORDER BY k.code, s.state
$$;
ALTER FUNCTION metrics_active_runs() OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION metrics_active_runs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrics_active_runs() TO eam_app;

-- Client certificates at risk per custodian, as the connections' last syncs read them:
-- expired, and expiring within `within_days`. Every custodian has a row, zeros included.
CREATE FUNCTION metrics_client_certificates(within_days integer)
RETURNS TABLE (custodian text, expired bigint, expiring bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT k.code,
        count(c.id) FILTER (WHERE c.client_cert_expires_at <= now()),
        count(c.id) FILTER (WHERE c.client_cert_expires_at > now())
    FROM custodians k
    LEFT JOIN bank_connections c ON c.custodian = k.code
        AND c.client_cert_expires_at <= now() + make_interval(days => within_days)
    GROUP BY k.code
    ORDER BY k.code
$$;
ALTER FUNCTION metrics_client_certificates(integer) OWNER TO eam_dispatch;
REVOKE ALL ON FUNCTION metrics_client_certificates(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrics_client_certificates(integer) TO eam_app;
