//! Sync runs (the job history) and their one state machine.
//!
//! PostgreSQL is the system of record for runs; Redis only carries tasks. Every status change
//! goes through [`transition`], which allows only the moves [`RunStatus::can_become`] lists, in
//! a single conditional UPDATE, so two workers racing on one run cannot both win.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use eam_model::ErrorClass;

use crate::{ConnectionId, Result, RunId, StoreError, TenantTx};

pub use eam_model::run::{RunError, RunStatus, Trigger};

/// A stored run.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub trigger: String,
    pub status: String,
    pub requested_by: Option<String>,
    pub attempts: i32,
    pub attempt_errors: Value,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub counts: Value,
    pub cursor_before: Option<Value>,
    pub cursor_after: Option<Value>,
    pub retry_of: Option<Uuid>,
    /// For a replay: the run whose archived documents it loads.
    pub replay_of: Option<Uuid>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A queued run waits until then (retry back-off).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub enqueue_count: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The id of the API request that created the run, carried into the worker's logs.
    pub request_id: Option<String>,
    /// For a run a schedule enqueued: the scheduled time it is for. Read by the run queries
    /// (`get`, `list`), None in what a transition returns.
    pub scheduled_for: Option<DateTime<Utc>>,
}

impl Run {
    /// The typed status (the column is constrained to these values).
    pub fn status(&self) -> RunStatus {
        RunStatus::parse(&self.status).unwrap_or(RunStatus::Failed)
    }
}

/// The run query with a tail appended at compile time.
macro_rules! select_run {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Run,
            "SELECT id, tenant_id, connection_id, trigger, status, requested_by, attempts, attempt_errors,
                error_class, error_message, counts, cursor_before, cursor_after, retry_of, replay_of,
                queued_at, started_at, finished_at, next_attempt_at, enqueue_count, lease_owner,
                lease_expires_at, request_id,
                (SELECT f.scheduled_for FROM schedule_fires f
                 WHERE f.run_id = sync_runs.id AND f.outcome = 'enqueued') AS scheduled_for
             FROM sync_runs "
                + $tail
            $(, $arg)*,
        )
    };
}

/// A run requested by ops, a schedule or support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requested {
    pub id: RunId,
    /// True when the connection already had a queued or running run: that one is returned
    /// instead of a second sync of the same connection.
    pub coalesced: bool,
}

/// Who asked for a run: the actor, and the id of the API request when it came through one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub requested_by: Option<&'a str>,
    /// The request's X-Request-Id, kept on the run so the worker logs it with the sync.
    pub request_id: Option<&'a str>,
}

impl<'a> Origin<'a> {
    /// An actor asking outside any API request (the command line, a test).
    pub fn actor(requested_by: &'a str) -> Self {
        Origin {
            requested_by: Some(requested_by),
            request_id: None,
        }
    }
}

/// Records a new queued run, counted as pushed once (the caller pushes it right after
/// committing), or returns the connection's active run. At most one run per connection is
/// queued or running, enforced by a unique index, so concurrent triggers cannot both win.
pub async fn create(
    tx: &mut TenantTx,
    connection: ConnectionId,
    trigger: Trigger,
    origin: Origin<'_>,
    retry_of: Option<RunId>,
) -> Result<Requested> {
    let id = RunId::new();
    let tenant = tx.tenant();
    let inserted: Option<Uuid> = sqlx::query_scalar!(
        "INSERT INTO sync_runs (id, tenant_id, connection_id, trigger, status, requested_by, retry_of,
            enqueued_at, enqueue_count, request_id)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, now(), 1, $7)
         ON CONFLICT (connection_id) WHERE status IN ('queued', 'running') DO NOTHING
         RETURNING id",
        id.0,
        tenant.0,
        connection.0,
        trigger.as_str(),
        origin.requested_by,
        retry_of.map(|r| r.0),
        origin.request_id,
    )
    .fetch_optional(tx.conn())
    .await?;
    if inserted.is_some() {
        return Ok(Requested {
            id,
            coalesced: false,
        });
    }
    let active: Option<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM sync_runs WHERE connection_id = $1 AND status IN ('queued', 'running')",
        connection.0
    )
    .fetch_optional(tx.conn())
    .await?;
    // The active run may have finished between the insert and the select: then report a
    // conflict rather than guess; the caller asks again.
    let active = active.ok_or_else(|| {
        StoreError::Conflict("the connection's sync finished just now; trigger again".into())
    })?;
    Ok(Requested {
        id: RunId(active),
        coalesced: true,
    })
}

/// Creates the retry of a failed or dead run: a new queued run linked by `retry_of`. A run is
/// retried at most once (its retry may be retried in turn); a run that is not failed or dead
/// is a conflict.
pub async fn retry(tx: &mut TenantTx, id: RunId, origin: Origin<'_>) -> Result<Requested> {
    let run = get_for_update(tx, id).await?;
    let status = run.status();
    if !matches!(status, RunStatus::Failed | RunStatus::Dead) {
        return Err(StoreError::Conflict(format!(
            "only failed or dead runs can be retried; this one is {}",
            status.as_str()
        )));
    }
    let retried: Option<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM sync_runs WHERE retry_of = $1 AND status <> 'cancelled'",
        id.0
    )
    .fetch_optional(tx.conn())
    .await?;
    if let Some(by) = retried {
        return Err(StoreError::Conflict(format!("already retried by run {by}")));
    }
    create(
        tx,
        ConnectionId(run.connection_id),
        Trigger::Retry,
        origin,
        Some(id),
    )
    .await
}

/// Creates a replay of a finished run: a new queued run (trigger `replay`) that loads the
/// documents the source run archived, without calling the bank. A replay of a replay loads the
/// same documents, so it links to the run that fetched them. Refused (conflict) while the
/// connection has a queued or running run, for a run that is not finished, and for one that
/// archived nothing.
pub async fn replay(tx: &mut TenantTx, source: RunId, origin: Origin<'_>) -> Result<RunId> {
    let run = get_for_update(tx, source).await?;
    let status = run.status();
    if !status.is_terminal() {
        return Err(StoreError::Conflict(format!(
            "the run is {}; replay it once it has finished",
            status.as_str()
        )));
    }
    let fetched_by = RunId(run.replay_of.unwrap_or(run.id));
    let archived: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM documents WHERE run_id = $1"#,
        fetched_by.0
    )
    .fetch_one(tx.conn())
    .await?;
    if archived == 0 {
        return Err(StoreError::Conflict(
            "the run archived no documents: there is nothing to replay".into(),
        ));
    }
    let id = RunId::new();
    let inserted: Option<Uuid> = sqlx::query_scalar!(
        "INSERT INTO sync_runs (id, tenant_id, connection_id, trigger, status, requested_by,
            replay_of, enqueued_at, enqueue_count, request_id)
         VALUES ($1, $2, $3, 'replay', 'queued', $4, $5, now(), 1, $6)
         ON CONFLICT (connection_id) WHERE status IN ('queued', 'running') DO NOTHING
         RETURNING id",
        id.0,
        tx.tenant().0,
        run.connection_id,
        origin.requested_by,
        fetched_by.0,
        origin.request_id
    )
    .fetch_optional(tx.conn())
    .await?;
    match inserted {
        Some(_) => Ok(id),
        None => Err(StoreError::Conflict(
            "the connection has a queued or running run; replay once it has finished".into(),
        )),
    }
}

/// The failed or dead runs a bulk retry would retry: per connection, the newest matching run
/// not retried yet (older failures of the same connection are superseded by it).
pub async fn retry_candidates(tx: &mut TenantTx, filter: &RunFilter) -> Result<Vec<Run>> {
    Ok(select_run!("WHERE id IN (
            SELECT DISTINCT ON (r.connection_id) r.id FROM sync_runs r
            WHERE r.status IN ('failed', 'dead')
              AND ($1::text IS NULL OR r.status = $1)
              AND ($2::uuid IS NULL OR r.connection_id = $2)
              AND ($3::text IS NULL OR r.error_class = $3)
              AND ($4::timestamptz IS NULL OR r.queued_at >= $4)
              AND NOT EXISTS (SELECT 1 FROM sync_runs n WHERE n.retry_of = r.id AND n.status <> 'cancelled')
            ORDER BY r.connection_id, r.queued_at DESC, r.id DESC)
         ORDER BY queued_at DESC, id DESC LIMIT $5", filter.status.map(RunStatus::as_str), filter.connection.map(|c| c.0), filter.error_class.as_deref(), filter.since, filter.limit)
    .fetch_all(tx.conn())
    .await?)
}

async fn get_for_update(tx: &mut TenantTx, id: RunId) -> Result<Run> {
    select_run!("WHERE id = $1 FOR UPDATE", id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// One run of the tenant.
pub async fn get(tx: &mut TenantTx, id: RunId) -> Result<Run> {
    select_run!("WHERE id = $1", id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// A filter over the job list, newest first, with keyset pagination.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub connection: Option<ConnectionId>,
    /// `transient`, `auth`, `data` or `internal`.
    pub error_class: Option<String>,
    /// Only runs queued at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only runs older than this (queued_at, id): the cursor of the previous page.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// The tenant's runs matching a filter.
pub async fn list(tx: &mut TenantTx, filter: &RunFilter) -> Result<Vec<Run>> {
    let (before_at, before_id) = filter.before.unzip();
    Ok(select_run!(
        "WHERE ($1::text IS NULL OR status = $1)
           AND ($2::uuid IS NULL OR connection_id = $2)
           AND ($3::text IS NULL OR error_class = $3)
           AND ($4::timestamptz IS NULL OR queued_at >= $4)
           AND ($5::timestamptz IS NULL OR (queued_at, id) < ($5, $6))
         ORDER BY queued_at DESC, id DESC LIMIT $7",
        filter.status.map(RunStatus::as_str),
        filter.connection.map(|c| c.0),
        filter.error_class.as_deref(),
        filter.since,
        before_at,
        before_id,
        filter.limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// One failed attempt, as kept in `attempt_errors`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttemptError {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub class: ErrorClass,
    pub message: String,
}

/// A worker's claim on a running run: who, and for how long unless renewed.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub ttl: std::time::Duration,
}

/// A status change and what it records with it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub to: RunStatus,
    /// Starting a new attempt (to `Running`).
    pub new_attempt: bool,
    pub attempt_error: Option<AttemptError>,
    /// The run's final error.
    pub error: Option<RunError>,
    /// A message without an error class, e.g. who cancelled the run.
    pub note: Option<String>,
    pub counts: Option<Value>,
    pub cursor_before: Option<Value>,
    pub cursor_after: Option<Value>,
    /// To `Running`: the lease the worker takes. Leaving `Running` drops any lease.
    pub lease: Option<Lease>,
    /// To `Queued`: not to be started before this.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Only if the run is due (its retry time has come): a task delivered early waits.
    pub only_if_due: bool,
    /// Only if the current lease has expired (its worker is presumed dead).
    pub only_if_lease_expired: bool,
    /// Only if this worker still holds the lease (it was not presumed dead and replaced).
    pub only_if_lease_owner: Option<String>,
}

impl Transition {
    pub fn to(to: RunStatus) -> Self {
        Transition {
            to,
            new_attempt: false,
            attempt_error: None,
            error: None,
            note: None,
            counts: None,
            cursor_before: None,
            cursor_after: None,
            lease: None,
            next_attempt_at: None,
            only_if_due: false,
            only_if_lease_expired: false,
            only_if_lease_owner: None,
        }
    }
}

/// Applies a transition if the run's current status (and the transition's guards) allow it;
/// otherwise [`StoreError::InvalidTransition`] (and nothing changes).
pub async fn transition(tx: &mut TenantTx, id: RunId, t: Transition) -> Result<Run> {
    let attempt_error = t
        .attempt_error
        .as_ref()
        .map(|e| serde_json::to_value([e]))
        .transpose()
        .map_err(|e| StoreError::Data(e.to_string()))?;
    let (error_class, error_message) = t
        .error
        .as_ref()
        .map(|e| (e.class.as_str(), e.message.clone()))
        .unzip();
    let (lease_owner, lease_secs) = t
        .lease
        .as_ref()
        .map(|l| (l.owner.clone(), l.ttl.as_secs_f64()))
        .unzip();
    // The wall clock, not now(): the final transition of a sync runs at the end of its load
    // transaction, and now() is when that transaction began (tens of seconds earlier for a
    // million rows), which made finished_at and the duration a lie.
    let updated = sqlx::query_as!(
        Run,
        r#"UPDATE sync_runs SET
            status = $2,
            attempts = attempts + CASE WHEN $3 THEN 1 ELSE 0 END,
            started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,
            finished_at = CASE WHEN $2 IN ('queued', 'running') THEN NULL ELSE clock_timestamp() END,
            attempt_errors = CASE WHEN $4::jsonb IS NULL THEN attempt_errors ELSE attempt_errors || $4::jsonb END,
            error_class = coalesce($5, error_class),
            error_message = coalesce($6, $17, error_message),
            counts = coalesce($7, counts),
            cursor_before = coalesce($8, cursor_before),
            cursor_after = coalesce($9, cursor_after),
            lease_owner = CASE WHEN $2 = 'running' THEN $11 ELSE NULL END,
            lease_expires_at = CASE WHEN $2 = 'running' THEN clock_timestamp() + make_interval(secs => $12) ELSE NULL END,
            next_attempt_at = CASE WHEN $2 = 'queued' THEN $13 ELSE next_attempt_at END
         WHERE id = $1 AND status = ANY($10)
           AND (NOT $14 OR coalesce(next_attempt_at, '-infinity') <= clock_timestamp())
           AND (NOT $15 OR lease_expires_at < clock_timestamp())
           AND ($16::text IS NULL OR lease_owner = $16)
         RETURNING id, tenant_id, connection_id, trigger, status, requested_by, attempts, attempt_errors,
            error_class, error_message, counts, cursor_before, cursor_after, retry_of, replay_of,
            queued_at, started_at, finished_at, next_attempt_at, enqueue_count, lease_owner,
            lease_expires_at, request_id, NULL::timestamptz AS scheduled_for"#,
        id.0,
        t.to.as_str(),
        t.new_attempt,
        attempt_error,
        error_class,
        error_message,
        t.counts,
        t.cursor_before,
        t.cursor_after,
        &RunStatus::sources(t.to),
        lease_owner,
        lease_secs,
        t.next_attempt_at,
        t.only_if_due,
        t.only_if_lease_expired,
        t.only_if_lease_owner,
        t.note,
    )
    .fetch_optional(tx.conn())
    .await?;
    match updated {
        Some(run) => Ok(run),
        None => {
            let current = get(tx, id).await?;
            Err(StoreError::InvalidTransition {
                from: current.status,
                to: t.to.as_str().to_owned(),
            })
        }
    }
}

/// Renews a worker's lease on a running run. False when the run is no longer running under
/// this worker's lease (cancelled, or presumed dead and given to another worker): the worker
/// must then stop, and its load will not commit.
pub async fn renew_lease(tx: &mut TenantTx, id: RunId, lease: &Lease) -> Result<bool> {
    let renewed = sqlx::query!(
        "UPDATE sync_runs SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND status = 'running' AND lease_owner = $2",
        id.0,
        &lease.owner,
        lease.ttl.as_secs_f64()
    )
    .execute(tx.conn())
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// A run due for a push to the queue, as [`Store::claim_due_runs`] returns it.
#[derive(Debug, Clone)]
pub struct DueRun {
    pub run_id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    /// `queued`, or `running` with an expired lease.
    pub status: String,
    /// The push number this claim stands for (part of the task id).
    pub enqueue_count: i32,
}

#[cfg(test)]
mod tests {
    use super::RunStatus::*;
    use super::*;

    #[test]
    fn terminal_runs_never_change() {
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunStatus::ALL {
                assert!(!from.can_become(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_queued_run_must_run_before_it_can_succeed() {
        assert!(Queued.can_become(Running));
        assert!(
            !Running.can_become(Running),
            "a running run is never taken over"
        );
        assert!(!Queued.can_become(Succeeded));
        assert!(!Queued.can_become(Failed));
        assert!(Running.can_become(SucceededWithBreaks));
        assert_eq!(RunStatus::sources(Succeeded), vec!["running".to_owned()]);
    }
}
