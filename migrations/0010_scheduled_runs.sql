-- A run's scheduled time (issue 6, shown by GET /jobs): the fire that enqueued it, found by
-- run id for each run a jobs page lists.
CREATE INDEX schedule_fires_run ON schedule_fires (run_id) WHERE run_id IS NOT NULL;
