//! Market-data runs: every load of the ECB's reference rates, platform-wide (not tenant data,
//! like `fx_rates`), with its status, error and what it loaded.
//!
//! A run moves through the sync runs' state machine (`RunStatus::can_become`), of which it
//! uses `queued`, `running`, `succeeded` and `failed` (and `cancelled` for a run the queue
//! could not take when it was triggered); [`transition`] is the one conditional
//! UPDATE that changes a status. Exactly once per scheduled time is the database's job, as for
//! connections' schedules: [`fire`] inserts the run with its `scheduled_for`, which is unique,
//! so of two ticks handling the same time one inserts and the other finds it there.

use chrono::{DateTime, Utc};
use eam_model::{RunError, RunId, RunStatus};
use serde_json::Value;
use uuid::Uuid;

use crate::runs::Lease;
use crate::{Result, Store, StoreError};

/// Which of the ECB's files a run loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatesFile {
    /// The latest business day's rates.
    Daily,
    /// Every business day since 1999.
    History,
}

impl RatesFile {
    pub fn as_str(self) -> &'static str {
        match self {
            RatesFile::Daily => "daily",
            RatesFile::History => "history",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => Some(RatesFile::Daily),
            "history" => Some(RatesFile::History),
            _ => None,
        }
    }
}

/// One market-data run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketDataRun {
    pub id: Uuid,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// `daily` or `history`; `None` until a run started without one decides.
    pub file: Option<String>,
    pub status: String,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub requested_by: Option<String>,
    pub attempts: i32,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub enqueue_count: i32,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub document: Option<String>,
    pub document_sha256: Option<String>,
    pub rates: Option<i32>,
    pub inserted: Option<i32>,
    pub updated: Option<i32>,
    pub unchanged: Option<i32>,
    pub warnings: Value,
}

/// The columns of [`MarketDataRun`], followed by the rest of the query.
macro_rules! select_market_data_run {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            MarketDataRun,
            "SELECT id, trigger, file, status, scheduled_for, requested_by, attempts, queued_at,
                started_at, finished_at, next_attempt_at, enqueue_count, lease_expires_at,
                error_class, error_message, document, document_sha256, rates, inserted, updated,
                unchanged, warnings
             FROM market_data_runs "
                + $tail
            $(, $arg)*,
        )
    };
}

/// What a run loaded, recorded when it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatesLoaded {
    pub document: String,
    pub sha256: String,
    pub rates: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub warnings: Vec<String>,
}

/// A status change of a market-data run and what it records with it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub to: RunStatus,
    /// Starting a new attempt (to `Running`).
    pub new_attempt: bool,
    /// To `Running`: the file the run loads, when it had none.
    pub file: Option<RatesFile>,
    /// To `Running`: the lease the worker takes. Leaving `Running` drops any lease.
    pub lease: Option<Lease>,
    /// To `Queued`: not to be started before this.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The error of the attempt that ended (the final one, or the last before a retry).
    pub error: Option<RunError>,
    pub loaded: Option<RatesLoaded>,
    /// Only if the run is due (its retry time has come).
    pub only_if_due: bool,
    /// Only if the current lease has expired (its worker is presumed dead).
    pub only_if_lease_expired: bool,
    /// Only if this worker still holds the lease.
    pub only_if_lease_owner: Option<String>,
}

impl Transition {
    pub fn to(to: RunStatus) -> Self {
        Transition {
            to,
            new_attempt: false,
            file: None,
            lease: None,
            next_attempt_at: None,
            error: None,
            loaded: None,
            only_if_due: false,
            only_if_lease_expired: false,
            only_if_lease_owner: None,
        }
    }
}

/// The statuses a market-data run can have (a subset of the sync runs'): cancelled only when
/// the queue could not take a run triggered by hand.
const STATUSES: [RunStatus; 5] = [
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Moves a run to `t.to` if the state machine allows it from its current status (and the
/// transition's conditions hold), recording what the transition carries.
pub async fn transition(store: &Store, id: RunId, t: Transition) -> Result<MarketDataRun> {
    if !STATUSES.contains(&t.to) {
        return Err(StoreError::Data(format!(
            "a market-data run is never {}",
            t.to.as_str()
        )));
    }
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
    let loaded = t.loaded.as_ref();
    let warnings = loaded
        .map(|l| serde_json::to_value(&l.warnings))
        .transpose()
        .map_err(|e| StoreError::Data(e.to_string()))?;
    let updated = sqlx::query_as!(
        MarketDataRun,
        r#"UPDATE market_data_runs SET
            status = $2,
            attempts = attempts + CASE WHEN $3 THEN 1 ELSE 0 END,
            file = coalesce(file, $4),
            started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,
            finished_at = CASE WHEN $2 IN ('queued', 'running') THEN NULL ELSE clock_timestamp() END,
            lease_owner = CASE WHEN $2 = 'running' THEN $5 ELSE NULL END,
            lease_expires_at = CASE WHEN $2 = 'running' THEN clock_timestamp() + make_interval(secs => $6) ELSE NULL END,
            next_attempt_at = CASE WHEN $2 = 'queued' THEN $7 ELSE next_attempt_at END,
            error_class = CASE WHEN $2 = 'succeeded' THEN NULL ELSE coalesce($8, error_class) END,
            error_message = CASE WHEN $2 = 'succeeded' THEN NULL ELSE coalesce($9, error_message) END,
            document = coalesce($10, document),
            document_sha256 = coalesce($11, document_sha256),
            rates = coalesce($12, rates),
            inserted = coalesce($13, inserted),
            updated = coalesce($14, updated),
            unchanged = coalesce($15, unchanged),
            warnings = coalesce($16, warnings)
         WHERE id = $1 AND status = ANY($17)
           AND (NOT $18 OR coalesce(next_attempt_at, '-infinity') <= clock_timestamp())
           AND (NOT $19 OR lease_expires_at < clock_timestamp())
           AND ($20::text IS NULL OR lease_owner = $20)
         RETURNING id, trigger, file, status, scheduled_for, requested_by, attempts, queued_at,
            started_at, finished_at, next_attempt_at, enqueue_count, lease_expires_at,
            error_class, error_message, document, document_sha256, rates, inserted, updated,
            unchanged, warnings"#,
        id.0,
        t.to.as_str(),
        t.new_attempt,
        t.file.map(RatesFile::as_str),
        lease_owner,
        lease_secs,
        t.next_attempt_at,
        error_class,
        error_message,
        loaded.map(|l| l.document.as_str()),
        loaded.map(|l| l.sha256.as_str()),
        loaded.map(|l| count(l.rates)),
        loaded.map(|l| count(l.inserted)),
        loaded.map(|l| count(l.updated)),
        loaded.map(|l| count(l.unchanged)),
        warnings,
        &RunStatus::sources(t.to),
        t.only_if_due,
        t.only_if_lease_expired,
        t.only_if_lease_owner,
    )
    .fetch_optional(store.pool())
    .await?;
    match updated {
        Some(run) => Ok(run),
        None => {
            let current = get(store, id).await?;
            Err(StoreError::InvalidTransition {
                from: current.status,
                to: t.to.as_str().to_owned(),
            })
        }
    }
}

/// Renews a worker's lease on a running run; false when the run is no longer running under
/// it (presumed dead and given back to the queue).
pub async fn renew_lease(store: &Store, id: RunId, lease: &Lease) -> Result<bool> {
    let renewed = sqlx::query!(
        "UPDATE market_data_runs SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND status = 'running' AND lease_owner = $2",
        id.0,
        &lease.owner,
        lease.ttl.as_secs_f64()
    )
    .execute(store.pool())
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// The run with this id.
pub async fn get(store: &Store, id: RunId) -> Result<MarketDataRun> {
    select_market_data_run!("WHERE id = $1", id.0)
        .fetch_optional(store.pool())
        .await?
        .ok_or(StoreError::NotFound)
}

/// Up to `limit` runs queued before the keyset position `after` (queued time, id), newest
/// first.
pub async fn list(
    store: &Store,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MarketDataRun>> {
    let (at, id) = after.unzip();
    Ok(select_market_data_run!(
        "WHERE ($1::timestamptz IS NULL OR (queued_at, id) < ($1, $2))
         ORDER BY queued_at DESC, id DESC LIMIT $3",
        at,
        id,
        limit
    )
    .fetch_all(store.pool())
    .await?)
}

/// A run started by hand, pushed at once by the caller (`enqueued_at` is now): loads `file`,
/// or with `None` whichever the run decides when it starts.
pub async fn create_manual(
    store: &Store,
    file: Option<RatesFile>,
    requested_by: &str,
) -> Result<MarketDataRun> {
    let id = RunId::new();
    Ok(sqlx::query_as!(
        MarketDataRun,
        r#"INSERT INTO market_data_runs (id, trigger, file, status, requested_by, enqueued_at, enqueue_count)
         VALUES ($1, 'manual', $2, 'queued', $3, now(), 1)
         RETURNING id, trigger, file, status, scheduled_for, requested_by, attempts, queued_at,
            started_at, finished_at, next_attempt_at, enqueue_count, lease_expires_at,
            error_class, error_message, document, document_sha256, rates, inserted, updated,
            unchanged, warnings"#,
        id.0,
        file.map(RatesFile::as_str),
        requested_by
    )
    .fetch_one(store.pool())
    .await?)
}

/// The latest scheduled time already handled.
pub async fn latest_scheduled(store: &Store) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar!("SELECT max(scheduled_for) FROM market_data_runs")
            .fetch_one(store.pool())
            .await?,
    )
}

/// Handles one scheduled time, exactly once: a new run, not pushed (the dispatcher pushes it,
/// so a tick needs PostgreSQL only), or `None` when another tick handled the time first.
pub async fn fire(store: &Store, scheduled_for: DateTime<Utc>) -> Result<Option<RunId>> {
    let id = RunId::new();
    let inserted: Option<Uuid> = sqlx::query_scalar!(
        "INSERT INTO market_data_runs (id, trigger, status, scheduled_for)
         VALUES ($1, 'schedule', 'queued', $2)
         ON CONFLICT (scheduled_for) DO NOTHING
         RETURNING id",
        id.0,
        scheduled_for
    )
    .fetch_optional(store.pool())
    .await?;
    Ok(inserted.map(RunId))
}

/// A run due for a push to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    pub id: Uuid,
    /// `queued`, or `running` when its lease expired (its worker died).
    pub status: String,
    /// The push number this claim takes.
    pub enqueue_count: i32,
}

/// Claims up to `max` runs due for a push, as `claim_due_runs` does for sync runs: queued runs
/// whose time has come and that were not pushed since (or were pushed more than `stale_after`
/// ago and never started), and running runs whose lease expired. Each claimed run is marked
/// pushed, so concurrent dispatchers split the work.
pub async fn claim_due(
    store: &Store,
    stale_after: std::time::Duration,
    max: u32,
) -> Result<Vec<DueRun>> {
    Ok(sqlx::query_as!(
        DueRun,
        "WITH due AS (
             SELECT r.id FROM market_data_runs r
             WHERE (r.status = 'queued'
                    AND coalesce(r.next_attempt_at, r.queued_at) <= now()
                    AND (r.enqueued_at IS NULL
                         OR r.enqueued_at < coalesce(r.next_attempt_at, r.queued_at)
                         OR r.enqueued_at < now() - make_interval(secs => $1)))
                OR (r.status = 'running' AND r.lease_expires_at < now())
             ORDER BY coalesce(r.next_attempt_at, r.queued_at)
             LIMIT $2
             FOR UPDATE SKIP LOCKED
         )
         UPDATE market_data_runs r SET enqueued_at = now(), enqueue_count = r.enqueue_count + 1
         FROM due WHERE r.id = due.id
         RETURNING r.id, r.status, r.enqueue_count",
        stale_after.as_secs_f64(),
        i64::from(max)
    )
    .fetch_all(store.pool())
    .await?)
}
