//! Jobs: the history of sync runs, read from PostgreSQL (never from the queue).

use chrono::{DateTime, Utc};
use eam_model::ErrorClass;
use eam_store::runs::{self, AttemptError, Run, RunFilter, RunStatus, Transition};
use eam_store::{ConnectionId, RunId, TenantTx};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};
use serde_json::json;
use uuid::Uuid;

use crate::approvals::{Approvable, Gated, PendingApproval, Request, Sensitive, gate, sensitive};
use crate::audit::AuditContext;
use crate::caller::{BearerToken, Caller};
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::routes::connections::enqueue;
use crate::routes::{JobError, decode_cursor, next_cursor, page_limit};
use crate::state::ApiState;

pub struct JobsApi(pub ApiState);

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
    /// `manual`, `schedule`, `retry` or `replay`.
    trigger: String,
    /// For a run a schedule started: the scheduled time it is for (it may start later, after
    /// the tenant's spread or a custodian's limit).
    scheduled_for: Option<DateTime<Utc>>,
    /// `queued`, `running`, `succeeded`, `succeeded_with_breaks`, `failed`, `dead` or `cancelled`.
    status: String,
    requested_by: Option<String>,
    attempts: i32,
    /// The errors of failed attempts, oldest first.
    attempt_errors: Vec<Attempt>,
    error: Option<JobError>,
    /// A remark that is not an error, e.g. who cancelled the run.
    note: Option<String>,
    /// Inserted / updated / unchanged per record kind; `breaks`, `documents`, `warnings` (how
    /// many parse warnings) and `warning_samples` (the first 20: document, line, field,
    /// message).
    counts: serde_json::Value,
    cursor_before: Option<serde_json::Value>,
    cursor_after: Option<serde_json::Value>,
    retry_of: Option<Uuid>,
    /// For a replay: the run whose archived documents it loaded.
    replay_of: Option<Uuid>,
    queued_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    /// A queued run that failed before waits until then for its next attempt.
    next_attempt_at: Option<DateTime<Utc>>,
    /// The worker running it, while running.
    worker_id: Option<String>,
    /// The id of the API request that created the run (its `X-Request-Id`); the worker's and
    /// the connectors' log lines of the sync carry it too.
    request_id: Option<String>,
}

impl From<Run> for Job {
    fn from(r: Run) -> Self {
        let attempt_errors: Vec<AttemptError> =
            serde_json::from_value(r.attempt_errors).unwrap_or_default();
        let note = r.error_message.clone().filter(|_| r.error_class.is_none());
        let queued = r.status == "queued";
        let error = JobError::of(r.error_class, r.error_message);
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
                    class: a.class.as_str().to_owned(),
                    message: a.message,
                })
                .collect(),
            error,
            note,
            counts: r.counts,
            cursor_before: r.cursor_before,
            cursor_after: r.cursor_after,
            retry_of: r.retry_of,
            replay_of: r.replay_of,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: match (r.started_at, r.finished_at) {
                (Some(s), Some(f)) => Some((f - s).num_milliseconds()),
                _ => None,
            },
            next_attempt_at: r.next_attempt_at.filter(|_| queued),
            worker_id: r.lease_owner,
            request_id: r.request_id,
            scheduled_for: r.scheduled_for,
        }
    }
}

#[derive(Object)]
struct JobPage {
    jobs: Vec<Job>,
    /// Pass as `cursor` for older jobs; absent on the last page.
    next_cursor: Option<String>,
}

/// Which failed or dead runs a bulk retry takes; every field narrows it.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct RetryFilter {
    /// `failed` or `dead` (default: both).
    status: Option<String>,
    connection_id: Option<Uuid>,
    /// `transient`, `auth`, `data` or `internal`.
    error_class: Option<String>,
    /// Only runs queued at or after this time.
    since: Option<DateTime<Utc>>,
    /// At most this many runs, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// A retry that was queued.
#[derive(Object)]
pub(crate) struct Retried {
    /// The failed or dead run.
    retry_of: Uuid,
    /// The new run (or the connection's active run, when `coalesced`).
    run_id: Uuid,
    coalesced: bool,
}

/// A replay that was queued.
#[derive(Object)]
pub(crate) struct Replayed {
    /// The run whose archived documents the replay loads (the one that fetched them).
    replay_of: Uuid,
    /// The new run; poll `GET /jobs/{run_id}`.
    run_id: Uuid,
    status: String,
}

/// A queued replay, or the approval it waits for.
#[derive(Union)]
#[oai(one_of)]
pub(crate) enum ReplayOrApproval {
    Replayed(Replayed),
    Approval(PendingApproval),
}

#[derive(ApiResponse)]
enum ReplayAccepted {
    /// The replay is queued (`Location`: the run), or waits for approval (`Location`: the
    /// approval).
    #[oai(status = 202)]
    Accepted(Json<ReplayOrApproval>, #[oai(header = "Location")] String),
}

#[derive(Object)]
pub(crate) struct BulkRetried {
    /// One per connection: its newest matching failed run (older ones are superseded).
    retried: Vec<Retried>,
}

fn parse_status(s: Option<&str>) -> Result<Option<RunStatus>, ApiError> {
    s.map(|s| {
        RunStatus::parse(s).ok_or_else(|| ApiError::bad_request(format!("unknown status '{s}'")))
    })
    .transpose()
}

fn parse_class(s: Option<&str>) -> Result<Option<String>, ApiError> {
    s.map(|s| {
        ErrorClass::parse(s)
            .map(|c| c.as_str().to_owned())
            .ok_or_else(|| ApiError::bad_request(format!("unknown error class '{s}'")))
    })
    .transpose()
}

#[OpenApi(tag = "crate::Tag::Jobs")]
impl JobsApi {
    /// Sync runs, newest first, filtered by status, connection, error class and time.
    #[oai(path = "/jobs", method = "get", operation_id = "list_jobs")]
    // Each query parameter is an argument of an OpenAPI operation.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        token: BearerToken,
        status: Query<Option<String>>,
        connection_id: Query<Option<Uuid>>,
        /// `transient`, `auth`, `data` or `internal`.
        error_class: Query<Option<String>>,
        /// Only runs queued at or after this time (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<JobPage>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadJobs).await?;
        let limit = page_limit(limit.0, 50)?;
        let filter = RunFilter {
            status: parse_status(status.0.as_deref())?,
            connection: connection_id.0.map(ConnectionId),
            error_class: parse_class(error_class.0.as_deref())?,
            since: since.0,
            before: decode_cursor(cursor.0.as_deref())?,
            limit: limit + 1,
        };
        let mut tx = caller.tx(&self.0).await?;
        let mut rows = runs::list(&mut tx, &filter).await?;
        let next_cursor = next_cursor(&mut rows, limit, |r| (r.queued_at, r.id));
        Ok(Json(JobPage {
            jobs: rows.into_iter().map(Job::from).collect(),
            next_cursor,
        }))
    }

    /// One sync run with its attempts, counts and classified error.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "get_job")]
    async fn get(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Job>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadJobs).await?;
        let run = runs::get(&mut tx, RunId(id.0))
            .await
            .map_err(not_found("job", id.0))?;
        // Whoever sees a sync finish reads what it loaded next, even before this process hears
        // of the change from PostgreSQL (any page cached before the finish is older than it).
        let just_finished = run
            .finished_at
            .is_some_and(|at| chrono::Utc::now() - at < chrono::TimeDelta::minutes(5));
        if just_finished {
            self.0.read_cache.forget_tenant(caller.tenant);
        }
        Ok(Json(run.into()))
    }

    /// Retries a failed or dead run: a new run linked by `retry_of` (409 if the run is not
    /// failed or dead, or was already retried).
    #[oai(path = "/jobs/:id/retry", method = "post", operation_id = "retry_job")]
    async fn retry(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<Retried>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::RetryJobs).await?;
        let source = runs::get(&mut tx, RunId(id.0))
            .await
            .map_err(not_found("job", id.0))?;
        let request_id = crate::request::current_id();
        let requested =
            runs::retry(&mut tx, RunId(id.0), caller.origin(request_id.as_deref())).await?;
        let connection = ConnectionId(source.connection_id);
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "job.retried",
                format!("job:{}", id.0),
                json!({ "run_id": requested.id, "coalesced": requested.coalesced }),
            )
            .await?;
        tx.commit().await?;
        if !requested.coalesced {
            enqueue(&self.0, &caller, requested.id, connection).await?;
        }
        Ok(Json(Retried {
            retry_of: id.0,
            run_id: requested.id.0,
            coalesced: requested.coalesced,
        }))
    }

    /// Replays a finished run: re-normalizes the documents it archived into the store, without
    /// calling the bank (after a parser fix, say), as a new run linked by `replay_of` and
    /// loaded idempotently like any sync. 409 while the connection has a queued or running
    /// run, or when the run archived nothing. Needs a recent second factor; where the
    /// tenant's policy asks for four eyes, answers the pending approval instead (202, nothing
    /// queued until another user approves it).
    #[oai(
        path = "/jobs/:id/replay",
        method = "post",
        operation_id = "replay_job"
    )]
    async fn replay(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<ReplayAccepted, ApiError> {
        let state = &self.0;
        let (caller, gated) = sensitive(
            state,
            req,
            &token,
            Action::ReplayRuns,
            Some("replaying a run"),
            async |c, a, tx| replay(state, c, a, tx, RunId(id.0)).await,
        )
        .await?;
        Ok(match gated {
            Gated::Done(replay) => {
                replay.push(&self.0, &caller).await?;
                let location = format!("/api/v1/jobs/{}", replay.answer.run_id);
                ReplayAccepted::Accepted(Json(ReplayOrApproval::Replayed(replay.answer)), location)
            }
            Gated::Pending(p) => {
                let location = p.location();
                ReplayAccepted::Accepted(Json(ReplayOrApproval::Approval(p)), location)
            }
        })
    }

    /// Retries every failed or dead run matching the filter, one per connection (its newest
    /// not yet retried), e.g. all runs that died during last night's bank outage. Needs a
    /// recent second factor; where the tenant's policy asks for four eyes, answers 202 with
    /// the pending approval and retries nothing until another user approves it (the filter
    /// is applied then).
    #[oai(path = "/jobs/retry", method = "post", operation_id = "retry_jobs")]
    async fn retry_many(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<RetryFilter>,
    ) -> Result<Approvable<BulkRetried>, ApiError> {
        let state = &self.0;
        let (caller, gated) = sensitive(
            state,
            req,
            &token,
            Action::RetryJobs,
            Some("a bulk retry"),
            async |c, a, tx| bulk_retry(state, c, a, tx, body.0).await,
        )
        .await?;
        Ok(match gated {
            Gated::Done(retries) => {
                retries.push(&self.0, &caller).await?;
                Approvable::Done(Json(retries.answer))
            }
            Gated::Pending(p) => Approvable::pending(p),
        })
    }

    /// Cancels a queued or running run. A running sync stops at a safe point: its load does
    /// not commit, so nothing is half-loaded (409 if the run already finished).
    #[oai(
        path = "/jobs/:id/cancel",
        method = "post",
        operation_id = "cancel_job"
    )]
    async fn cancel(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<Job>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::CancelJobs).await?;
        runs::get(&mut tx, RunId(id.0))
            .await
            .map_err(not_found("job", id.0))?;
        let t = Transition {
            note: Some(format!("cancelled by {}", caller.subject)),
            ..Transition::to(RunStatus::Cancelled)
        };
        let run = runs::transition(&mut tx, RunId(id.0), t).await?;
        AuditContext::new(&caller, req)
            .record(&mut tx, "job.cancelled", format!("job:{}", id.0), json!({}))
            .await?;
        tx.commit().await?;
        Ok(Json(run.into()))
    }
}

/// What an operation queued, with the runs to push once its transaction committed.
pub(crate) struct Queued<T> {
    pub answer: T,
    pub runs: Vec<(RunId, ConnectionId)>,
}

impl<T> Queued<T> {
    pub(crate) async fn push(&self, state: &ApiState, caller: &Caller) -> Result<(), ApiError> {
        for (run, connection) in &self.runs {
            enqueue(state, caller, *run, *connection).await?;
        }
        Ok(())
    }
}

/// `POST /jobs/{id}/replay` in the caller's transaction (the approval's, when approved).
pub(crate) async fn replay(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: RunId,
) -> Result<Gated<Queued<Replayed>>, ApiError> {
    let source = runs::get(tx, id).await.map_err(not_found("job", id.0))?;
    let request = Request {
        what: Sensitive::Replay,
        target: format!("job:{id}"),
        summary: format!(
            "replay run {id} of connection {} ({}) from its archived documents",
            source.connection_id,
            source.status.as_str()
        ),
        params: json!({ "id": id.0 }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    let request_id = crate::request::current_id();
    let replay = runs::replay(tx, id, caller.origin(request_id.as_deref())).await?;
    let run = runs::get(tx, replay).await?;
    let replay_of = run.replay_of.unwrap_or(source.id);
    audit
        .record(
            tx,
            "job.replayed",
            format!("job:{id}"),
            json!({ "run_id": replay, "replay_of": replay_of }),
        )
        .await?;
    tracing::info!(run_id = %replay, replay_of = %replay_of, actor = %caller.subject, "replay queued");
    Ok(Gated::Done(Queued {
        answer: Replayed {
            replay_of,
            run_id: replay.0,
            status: RunStatus::Queued.as_str().into(),
        },
        runs: vec![(replay, ConnectionId(source.connection_id))],
    }))
}

/// `POST /jobs/retry` in the caller's transaction (the approval's, when approved).
pub(crate) async fn bulk_retry(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    body: RetryFilter,
) -> Result<Gated<Queued<BulkRetried>>, ApiError> {
    let status = parse_status(body.status.as_deref())?;
    if status.is_some_and(|s| !matches!(s, RunStatus::Failed | RunStatus::Dead)) {
        return Err(ApiError::unprocessable(
            "status: only failed or dead runs can be retried",
        ));
    }
    let filter = RunFilter {
        status,
        connection: body.connection_id.map(ConnectionId),
        error_class: parse_class(body.error_class.as_deref())?,
        since: body.since,
        before: None,
        limit: page_limit(body.limit, 100)?,
    };
    let candidates = runs::retry_candidates(tx, &filter).await?;
    let request = Request {
        what: Sensitive::BulkRetry,
        target: "jobs".into(),
        summary: format!(
            "retry the failed or dead runs matching the filter ({} now)",
            candidates.len()
        ),
        params: json!({ "body": body.to_json() }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    let mut retried = Vec::new();
    let mut to_push = Vec::new();
    let request_id = crate::request::current_id();
    for source in candidates {
        let requested =
            runs::retry(tx, RunId(source.id), caller.origin(request_id.as_deref())).await?;
        audit
            .record(
                tx,
                "job.retried",
                format!("job:{}", source.id),
                json!({ "run_id": requested.id, "coalesced": requested.coalesced, "bulk": true }),
            )
            .await?;
        if !requested.coalesced {
            to_push.push((requested.id, ConnectionId(source.connection_id)));
        }
        retried.push(Retried {
            retry_of: source.id,
            run_id: requested.id.0,
            coalesced: requested.coalesced,
        });
    }
    Ok(Gated::Done(Queued {
        answer: BulkRetried { retried },
        runs: to_push,
    }))
}
