//! Jobs: the history of sync runs, read from PostgreSQL (never from the queue).

use chrono::{DateTime, Utc};
use eam_connectors::ErrorClass;
use eam_store::runs::{self, AttemptError, Run, RunFilter, RunStatus};
use eam_store::{ConnectionId, RunId, StoreError};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct JobsApi(pub ApiState);

/// A classified error with the next step for support.
#[derive(Object)]
struct JobError {
    /// `transient`, `auth`, `data` or `internal`.
    class: String,
    message: String,
    suggested_action: String,
}

#[derive(Object)]
struct Attempt {
    attempt: i32,
    at: DateTime<Utc>,
    class: String,
    message: String,
}

/// A sync run.
#[derive(Object)]
struct Job {
    id: Uuid,
    connection_id: Uuid,
    /// `manual`, `schedule` or `retry`.
    trigger: String,
    /// `queued`, `running`, `succeeded`, `succeeded_with_breaks`, `failed`, `dead` or `cancelled`.
    status: String,
    requested_by: Option<String>,
    attempts: i32,
    /// The errors of failed attempts, oldest first.
    attempt_errors: Vec<Attempt>,
    error: Option<JobError>,
    /// Inserted / updated / unchanged per record kind.
    counts: serde_json::Value,
    cursor_before: Option<serde_json::Value>,
    cursor_after: Option<serde_json::Value>,
    retry_of: Option<Uuid>,
    queued_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
}

impl From<Run> for Job {
    fn from(r: Run) -> Self {
        let attempt_errors: Vec<AttemptError> =
            serde_json::from_value(r.attempt_errors).unwrap_or_default();
        let error = match (r.error_class, r.error_message) {
            (Some(class), Some(message)) => Some(JobError {
                suggested_action: ErrorClass::parse(&class)
                    .map(eam_worker::suggested_action)
                    .unwrap_or_default()
                    .to_owned(),
                class,
                message,
            }),
            _ => None,
        };
        Job {
            id: r.id,
            connection_id: r.connection_id,
            trigger: r.trigger,
            status: r.status,
            requested_by: r.requested_by,
            attempts: r.attempts,
            attempt_errors: attempt_errors
                .into_iter()
                .map(|a| Attempt {
                    attempt: a.attempt,
                    at: a.at,
                    class: a.class,
                    message: a.message,
                })
                .collect(),
            error,
            counts: r.counts,
            cursor_before: r.cursor_before,
            cursor_after: r.cursor_after,
            retry_of: r.retry_of,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: match (r.started_at, r.finished_at) {
                (Some(s), Some(f)) => Some((f - s).num_milliseconds()),
                _ => None,
            },
        }
    }
}

#[derive(Object)]
struct JobPage {
    jobs: Vec<Job>,
    /// Pass as `cursor` for older jobs; absent on the last page.
    next_cursor: Option<String>,
}

fn decode_cursor(s: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "cursor is not valid: pass next_cursor from the previous page unchanged",
        )
    };
    let (t, i) = s.split_once('~').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(t)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok((at, Uuid::parse_str(i).map_err(|_| bad())?))
}

#[OpenApi(tag = "crate::Tag::Jobs")]
impl JobsApi {
    /// Sync runs, newest first, filtered by status and connection.
    #[oai(path = "/jobs", method = "get")]
    async fn list(
        &self,
        token: BearerToken,
        status: Query<Option<String>>,
        connection_id: Query<Option<Uuid>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<JobPage>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadJobs)?;
        let limit = page_limit(limit.0, 50)?;
        let status = status
            .0
            .as_deref()
            .map(|s| {
                RunStatus::parse(s)
                    .ok_or_else(|| ApiError::bad_request(format!("unknown status '{s}'")))
            })
            .transpose()?;
        let filter = RunFilter {
            status,
            connection: connection_id.0.map(ConnectionId),
            before: cursor.0.as_deref().map(decode_cursor).transpose()?,
            limit: limit + 1,
        };
        let mut tx = caller.tx(&self.0).await?;
        let mut rows = runs::list(&mut tx, &filter).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| format!("{}~{}", r.queued_at.to_rfc3339(), r.id))
        } else {
            None
        };
        Ok(Json(JobPage {
            jobs: rows.into_iter().map(Job::from).collect(),
            next_cursor,
        }))
    }

    /// One sync run with its attempts, counts and classified error.
    #[oai(path = "/jobs/:id", method = "get")]
    async fn get(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Job>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadJobs)?;
        let mut tx = caller.tx(&self.0).await?;
        let run = runs::get(&mut tx, RunId(id.0)).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("job {} not found", id.0)),
            other => other.into(),
        })?;
        Ok(Json(run.into()))
    }
}
