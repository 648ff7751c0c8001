//! Market-data runs: the loads of the ECB's reference rates, platform-wide, for platform
//! admins and ops. Scheduled runs come from the worker's tick (`market_data.schedule`); `POST
//! /market-data/runs` queues one by hand. Read from PostgreSQL, never from the queue.

use chrono::{DateTime, Utc};
use eam_model::{ErrorClass, RunError, RunId, RunStatus};
use eam_queue::MarketDataTask;
use eam_store::market_data_runs::{self, MarketDataRun as StoredRun, RatesFile, Transition};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::routes::{JobError, decode_cursor, next_cursor, page_limit};
use crate::state::ApiState;

pub struct MarketDataApi(pub ApiState);

/// Which ECB file a run loads.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "lowercase")]
enum File {
    /// `eurofxref-daily.xml`: the latest business day.
    Daily,
    /// `eurofxref-hist.xml`: every business day.
    History,
}

/// What to load; without `file` the run decides when it starts: the history while no ECB rate
/// is stored, else the daily file.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct TriggerBody {
    file: Option<File>,
}

/// What a run did to `fx_rates`.
#[derive(Object)]
struct RateCounts {
    inserted: i32,
    updated: i32,
    unchanged: i32,
}

/// One load of the ECB's reference rates.
#[derive(Object)]
struct MarketDataRun {
    id: Uuid,
    /// `schedule` or `manual`.
    trigger: String,
    /// The scheduled time a scheduled run is for.
    scheduled_for: Option<DateTime<Utc>>,
    /// `daily` or `history`; null until a run started without one decides.
    file: Option<String>,
    /// `queued`, `running`, `succeeded` or `failed`; `cancelled` when the queue was
    /// unavailable as it was triggered.
    status: String,
    requested_by: Option<String>,
    attempts: i32,
    /// The last attempt's error (of a failed run, or of a queued one waiting to retry).
    error: Option<JobError>,
    /// The document loaded, as archived under the platform's namespace, and its SHA-256.
    document: Option<String>,
    document_sha256: Option<String>,
    /// Rates the document held.
    rates: Option<i32>,
    counts: Option<RateCounts>,
    /// Rates left out (currencies ISO 4217 does not know).
    warnings: Vec<String>,
    queued_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// A queued run that failed before waits until then for its next attempt.
    next_attempt_at: Option<DateTime<Utc>>,
}

impl From<StoredRun> for MarketDataRun {
    fn from(r: StoredRun) -> Self {
        let error = JobError::of(r.error_class, r.error_message);
        let counts = match (r.inserted, r.updated, r.unchanged) {
            (Some(inserted), Some(updated), Some(unchanged)) => Some(RateCounts {
                inserted,
                updated,
                unchanged,
            }),
            _ => None,
        };
        let queued = r.status == "queued";
        MarketDataRun {
            id: r.id,
            trigger: r.trigger,
            scheduled_for: r.scheduled_for,
            file: r.file,
            status: r.status,
            requested_by: r.requested_by,
            attempts: r.attempts,
            error,
            document: r.document,
            document_sha256: r.document_sha256,
            rates: r.rates,
            counts,
            warnings: serde_json::from_value(r.warnings).unwrap_or_default(),
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            next_attempt_at: r.next_attempt_at.filter(|_| queued),
        }
    }
}

#[derive(Object)]
struct MarketDataRunPage {
    runs: Vec<MarketDataRun>,
    /// Pass as `cursor` for older runs; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum Queued {
    /// The run is queued; poll `GET /market-data/runs/{id}`.
    #[oai(status = 202)]
    Accepted(Json<MarketDataRun>, #[oai(header = "Location")] String),
}

#[OpenApi(tag = "crate::Tag::Jobs")]
impl MarketDataApi {
    /// Market-data runs, newest first, paged.
    #[oai(
        path = "/market-data/runs",
        method = "get",
        operation_id = "list_market_data_runs"
    )]
    async fn list(
        &self,
        token: BearerToken,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<MarketDataRunPage>, ApiError> {
        self.0.caller(&token, Action::ReadMarketDataRuns).await?;
        let limit = page_limit(limit.0, 50)?;
        let after = decode_cursor::<DateTime<Utc>>(cursor.0.as_deref())?;
        let mut rows = market_data_runs::list(&self.0.store, after, limit + 1).await?;
        let next_cursor = next_cursor(&mut rows, limit, |r| (r.queued_at, r.id));
        Ok(Json(MarketDataRunPage {
            runs: rows.into_iter().map(MarketDataRun::from).collect(),
            next_cursor,
        }))
    }

    /// One market-data run.
    #[oai(
        path = "/market-data/runs/:id",
        method = "get",
        operation_id = "get_market_data_run"
    )]
    async fn get(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<MarketDataRun>, ApiError> {
        self.0.caller(&token, Action::ReadMarketDataRuns).await?;
        let run = market_data_runs::get(&self.0.store, RunId(id.0))
            .await
            .map_err(not_found("market-data run", id.0))?;
        Ok(Json(run.into()))
    }

    /// Queues a load of the ECB's reference rates now (idempotent: rates already stored are
    /// left as they are). Audited in the caller's tenant's log.
    #[oai(
        path = "/market-data/runs",
        method = "post",
        operation_id = "trigger_market_data_run"
    )]
    async fn trigger(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<TriggerBody>,
    ) -> Result<Queued, ApiError> {
        let caller = self.0.caller(&token, Action::TriggerMarketData).await?;
        let file = body.0.file.map(|f| match f {
            File::Daily => RatesFile::Daily,
            File::History => RatesFile::History,
        });
        let run = market_data_runs::create_manual(&self.0.store, file, &caller.subject).await?;
        let id = RunId(run.id);
        let mut tx = caller.tx(&self.0).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "market_data.triggered",
                format!("market_data_run:{id}"),
                json!({ "file": file.map(RatesFile::as_str) }),
            )
            .await?;
        tx.commit().await?;
        // The run row is committed before the task exists (see the sync trigger).
        let queue = self.0.queue.of_kind::<MarketDataTask>();
        if let Err(e) = queue.push(MarketDataTask { run_id: id }, 1).await {
            tracing::error!(run_id = %id, error = %e, "could not enqueue a market-data run");
            let t = Transition {
                error: Some(RunError::new(
                    ErrorClass::Transient,
                    format!("the job queue is unavailable: {e}"),
                )),
                ..Transition::to(RunStatus::Cancelled)
            };
            market_data_runs::transition(&self.0.store, id, t).await?;
            return Err(ApiError::unavailable(
                "the job queue is unavailable; try again shortly",
            ));
        }
        tracing::info!(run_id = %id, actor = %caller.subject, "market-data run queued");
        Ok(Queued::Accepted(
            Json(run.into()),
            format!("/api/v1/market-data/runs/{id}"),
        ))
    }
}
