-- Operability: the request that created a run, and readiness.

-- The API request that created a run (its X-Request-Id, as the client sent it or as the API
-- made it up), so that the API's log lines, the worker's and the connectors' for one sync can
-- be found together. NULL for runs a schedule or the command line created.
ALTER TABLE sync_runs ADD COLUMN request_id text
    CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 128);

-- `/ready` answers ready only when every migration the binary embeds is applied and none
-- failed, which the app role can tell only by reading sqlx's bookkeeping. The table holds
-- versions, descriptions and checksums (no tenant data, no secrets), and reading it is all
-- the app may do with it.
GRANT SELECT ON _sqlx_migrations TO eam_app;
