//! Sync runs (the job history) and their one state machine.
//!
//! PostgreSQL is the system of record for runs; Redis only carries tasks. Every status change
//! goes through [`transition`], which allows only the moves [`RunStatus::can_become`] lists, in
//! a single conditional UPDATE, so two workers racing on one run cannot both win.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::{ConnectionId, Result, RunId, StoreError, TenantTx};

/// Status of a sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    SucceededWithBreaks,
    Failed,
    Dead,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::SucceededWithBreaks,
        RunStatus::Failed,
        RunStatus::Dead,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::SucceededWithBreaks => "succeeded_with_breaks",
            RunStatus::Failed => "failed",
            RunStatus::Dead => "dead",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A terminal run never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The allowed transitions, in one place for the worker and the API alike.
    pub fn can_become(self, next: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, next),
            (Queued, Running | Cancelled)
                // Running -> Running: a new attempt after a crash (the task was handed back).
                // Running -> Queued: a transient failure waits for its next attempt.
                | (Running, Running | Queued)
                | (Running, Succeeded | SucceededWithBreaks | Failed | Dead | Cancelled)
        )
    }

    /// The statuses a run may be in to move to `next`.
    fn sources(next: RunStatus) -> Vec<String> {
        RunStatus::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .map(|s| s.as_str().to_owned())
            .collect()
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
    Retry,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Retry => "retry",
        }
    }
}

/// A stored run.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Run {
    /// The typed status (the column is constrained to these values).
    pub fn status(&self) -> RunStatus {
        RunStatus::parse(&self.status).unwrap_or(RunStatus::Failed)
    }
}

/// The run query with a tail appended at compile time.
macro_rules! select_run {
    ($tail:literal) => {
        concat!(
            "SELECT id, tenant_id, connection_id, trigger, status, requested_by, attempts, attempt_errors,
                error_class, error_message, counts, cursor_before, cursor_after, retry_of, queued_at,
                started_at, finished_at FROM sync_runs ",
            $tail
        )
    };
}

/// Records a new queued run.
pub async fn create(
    tx: &mut TenantTx,
    connection: ConnectionId,
    trigger: Trigger,
    requested_by: Option<&str>,
    retry_of: Option<RunId>,
) -> Result<RunId> {
    let id = RunId::new();
    let tenant = tx.tenant();
    sqlx::query(
        "INSERT INTO sync_runs (id, tenant_id, connection_id, trigger, status, requested_by, retry_of)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6)",
    )
    .bind(id.0)
    .bind(tenant.0)
    .bind(connection.0)
    .bind(trigger.as_str())
    .bind(requested_by)
    .bind(retry_of.map(|r| r.0))
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// One run of the tenant.
pub async fn get(tx: &mut TenantTx, id: RunId) -> Result<Run> {
    sqlx::query_as::<_, Run>(select_run!("WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// A filter over the job list, newest first, with keyset pagination.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub connection: Option<ConnectionId>,
    /// Only runs older than this (queued_at, id): the cursor of the previous page.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// The tenant's runs matching a filter.
pub async fn list(tx: &mut TenantTx, filter: &RunFilter) -> Result<Vec<Run>> {
    let (before_at, before_id) = filter.before.unzip();
    Ok(sqlx::query_as::<_, Run>(select_run!(
        "WHERE ($1::text IS NULL OR status = $1)
           AND ($2::uuid IS NULL OR connection_id = $2)
           AND ($3::timestamptz IS NULL OR (queued_at, id) < ($3, $4))
         ORDER BY queued_at DESC, id DESC LIMIT $5"
    ))
    .bind(filter.status.map(RunStatus::as_str))
    .bind(filter.connection.map(|c| c.0))
    .bind(before_at)
    .bind(before_id)
    .bind(filter.limit)
    .fetch_all(tx.conn())
    .await?)
}

/// One failed attempt, as kept in `attempt_errors`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttemptError {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub class: String,
    pub message: String,
}

/// A status change and what it records with it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub to: RunStatus,
    /// Starting a new attempt (to `Running`).
    pub new_attempt: bool,
    pub attempt_error: Option<AttemptError>,
    /// The run's final error (class, message).
    pub error: Option<(String, String)>,
    pub counts: Option<Value>,
    pub cursor_before: Option<Value>,
    pub cursor_after: Option<Value>,
}

impl Transition {
    pub fn to(to: RunStatus) -> Self {
        Transition {
            to,
            new_attempt: false,
            attempt_error: None,
            error: None,
            counts: None,
            cursor_before: None,
            cursor_after: None,
        }
    }
}

/// Applies a transition if the run's current status allows it; otherwise
/// [`StoreError::InvalidTransition`] (and nothing changes).
pub async fn transition(tx: &mut TenantTx, id: RunId, t: Transition) -> Result<Run> {
    let attempt_error = t
        .attempt_error
        .as_ref()
        .map(|e| serde_json::to_value([e]))
        .transpose()
        .map_err(|e| StoreError::Data(e.to_string()))?;
    let (error_class, error_message) = t.error.clone().unzip();
    let updated = sqlx::query_as::<_, Run>(
        "UPDATE sync_runs SET
            status = $2,
            attempts = attempts + CASE WHEN $3 THEN 1 ELSE 0 END,
            started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
            finished_at = CASE WHEN $2 IN ('queued', 'running') THEN NULL ELSE now() END,
            attempt_errors = CASE WHEN $4::jsonb IS NULL THEN attempt_errors ELSE attempt_errors || $4::jsonb END,
            error_class = coalesce($5, error_class),
            error_message = coalesce($6, error_message),
            counts = coalesce($7, counts),
            cursor_before = coalesce($8, cursor_before),
            cursor_after = coalesce($9, cursor_after)
         WHERE id = $1 AND status = ANY($10)
         RETURNING id, tenant_id, connection_id, trigger, status, requested_by, attempts, attempt_errors,
            error_class, error_message, counts, cursor_before, cursor_after, retry_of, queued_at,
            started_at, finished_at",
    )
    .bind(id.0)
    .bind(t.to.as_str())
    .bind(t.new_attempt)
    .bind(attempt_error)
    .bind(error_class)
    .bind(error_message)
    .bind(t.counts)
    .bind(t.cursor_before)
    .bind(t.cursor_after)
    .bind(RunStatus::sources(t.to))
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
        assert!(!Queued.can_become(Succeeded));
        assert!(!Queued.can_become(Failed));
        assert!(Running.can_become(SucceededWithBreaks));
        assert_eq!(RunStatus::sources(Succeeded), vec!["running".to_owned()]);
    }
}
