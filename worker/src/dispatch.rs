//! The dispatcher: PostgreSQL decides what runs, Redis only delivers.
//!
//! Every worker process runs one. Each tick it claims the runs that are due for a push (the
//! `claim_due_runs` database function, which several dispatchers can call at once without
//! claiming the same run twice) and pushes a task for each:
//!
//! - queued runs whose retry time has come (a transient failure waits there, with back-off);
//! - queued runs pushed long ago and never started: their task was lost (Redis restarted
//!   without persistence, the API died between commit and push);
//! - running runs whose lease expired: their worker died. They go back to `queued` first
//!   (through the run state machine, guarded on the expired lease), or `dead` once they have
//!   used all their attempts, so a sync that kills its worker cannot loop forever.
//!
//! A pushed task that turns out not to be needed is harmless: the pipeline starts only a run
//! that is queued and due. Market-data runs (`market_data_runs`, platform-wide) are dispatched
//! the same way onto their own queue: the ones a schedule tick created, retries, lost tasks and
//! dead workers' runs; reports (`reports`, every tenant's, through `claim_due_reports`) onto
//! theirs: the ones whose push the API could not make, retries, lost tasks and dead workers'
//! reports. The dispatcher also reports this worker's circuit breakers to
//! PostgreSQL when they change, so ops can see them through the API.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use eam_connectors::ErrorClass;
use eam_model::RunError;
use eam_store::breakers::BreakerRow;
use eam_store::runs::{self, AttemptError, RunStatus, Transition};
use eam_store::{ConnectionId, RunId, StoreError, TenantId};

use crate::pipeline::{SyncContext, SyncTask};
use eam_queue::{MarketDataQueue, MarketDataTask, ReportQueue, ReportTask, SyncQueue};
use eam_store::market_data_runs;

/// How often and how eagerly the dispatcher works.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub interval: Duration,
    /// A queued run pushed this long ago and not started is pushed again.
    pub stale_after: Duration,
    /// Runs claimed per tick.
    pub batch: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            interval: Duration::from_secs(1),
            stale_after: Duration::from_secs(60),
            batch: 200,
        }
    }
}

/// Dispatches until `stop` turns true.
pub async fn run_dispatcher(
    cx: SyncContext,
    queue: SyncQueue,
    settings: DispatchSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported: HashMap<String, u64> = HashMap::new();
    let market_queue = queue.of_kind::<MarketDataTask>();
    let report_queue = queue.of_kind::<ReportTask>();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        match dispatch_once(&cx, &queue, &settings).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pushed = n, "dispatched due runs"),
            Err(e) => tracing::warn!(error = %e, "could not dispatch due runs; trying again"),
        }
        match dispatch_market_data(&cx, &market_queue, &settings).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pushed = n, "dispatched due market-data runs"),
            Err(e) => {
                tracing::warn!(error = %e, "could not dispatch due market-data runs; trying again")
            }
        }
        match dispatch_reports(&cx, &report_queue, &settings).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pushed = n, "dispatched due reports"),
            Err(e) => tracing::warn!(error = %e, "could not dispatch due reports; trying again"),
        }
        report_breakers(&cx, &mut reported).await;
    }
    // A stopped worker's breakers say nothing about the bank any more: take them out of what
    // the platform reports (a worker killed outright leaves its last report behind).
    if let Err(e) = cx.store.forget_breakers(&cx.worker_id).await {
        tracing::warn!(error = %e, "could not remove this worker's reported circuit breakers");
    }
}

/// One dispatch round: returns the number of tasks pushed.
pub async fn dispatch_once(
    cx: &SyncContext,
    queue: &SyncQueue,
    settings: &DispatchSettings,
) -> Result<usize, StoreError> {
    let due = cx
        .store
        .claim_due_runs(settings.stale_after, settings.batch)
        .await?;
    let mut pushed = 0;
    for run in due {
        let task = SyncTask {
            run_id: RunId(run.run_id),
            tenant_id: TenantId(run.tenant_id),
            connection_id: ConnectionId(run.connection_id),
        };
        if run.status == "running" && !requeue_abandoned(cx, task).await? {
            continue;
        }
        let push = u32::try_from(run.enqueue_count).unwrap_or(u32::MAX);
        match queue.push(task, push).await {
            Ok(()) => pushed += 1,
            // The claim is recorded: the run is pushed again once it counts as stale.
            Err(e) => tracing::warn!(run_id = %task.run_id, error = %e, "could not push a due run"),
        }
    }
    Ok(pushed)
}

/// Puts a run whose worker died (lease expired) back in the queue, or ends it `dead` when it
/// has used its attempts. False when the lease was renewed meanwhile (the worker lives).
async fn requeue_abandoned(cx: &SyncContext, task: SyncTask) -> Result<bool, StoreError> {
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    let run = runs::get(&mut tx, task.run_id).await?;
    let exhausted = u32::try_from(run.attempts).unwrap_or(u32::MAX) >= cx.policy.max_attempts;
    let message = format!(
        "the worker running attempt {} stopped responding (its lease expired at {})",
        run.attempts,
        run.lease_expires_at
            .map_or_else(|| "?".to_owned(), |t| t.to_rfc3339())
    );
    let t = Transition {
        attempt_error: Some(AttemptError {
            attempt: run.attempts,
            at: Utc::now(),
            class: ErrorClass::Transient,
            message: message.clone(),
        }),
        error: exhausted.then(|| RunError::new(ErrorClass::Transient, message)),
        next_attempt_at: Some(Utc::now()),
        only_if_lease_expired: true,
        ..Transition::to(if exhausted {
            RunStatus::Dead
        } else {
            RunStatus::Queued
        })
    };
    match runs::transition(&mut tx, task.run_id, t).await {
        Ok(_) => {
            tx.commit().await?;
            tracing::warn!(run_id = %task.run_id, dead = exhausted, "recovered a run whose worker died");
            Ok(!exhausted)
        }
        Err(StoreError::InvalidTransition { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One dispatch round of market-data runs: returns the number of tasks pushed.
pub async fn dispatch_market_data(
    cx: &SyncContext,
    queue: &MarketDataQueue,
    settings: &DispatchSettings,
) -> Result<usize, StoreError> {
    let due = market_data_runs::claim_due(&cx.store, settings.stale_after, settings.batch).await?;
    let mut pushed = 0;
    for run in due {
        let task = MarketDataTask {
            run_id: RunId(run.id),
        };
        if run.status == "running" && !requeue_abandoned_market_data(cx, task.run_id).await? {
            continue;
        }
        let push = u32::try_from(run.enqueue_count).unwrap_or(u32::MAX);
        match queue.push(task, push).await {
            Ok(()) => pushed += 1,
            Err(e) => {
                tracing::warn!(run_id = %task.run_id, error = %e, "could not push a due market-data run")
            }
        }
    }
    Ok(pushed)
}

/// Puts a market-data run whose worker died back in the queue, or ends it `failed` when it has
/// used its attempts. False when the lease was renewed meanwhile.
async fn requeue_abandoned_market_data(cx: &SyncContext, run: RunId) -> Result<bool, StoreError> {
    let current = market_data_runs::get(&cx.store, run).await?;
    let exhausted = u32::try_from(current.attempts).unwrap_or(u32::MAX) >= cx.policy.max_attempts;
    let message = format!(
        "the worker running attempt {} stopped responding (its lease expired)",
        current.attempts
    );
    let t = market_data_runs::Transition {
        error: Some(RunError::new(ErrorClass::Transient, message)),
        next_attempt_at: Some(Utc::now()),
        only_if_lease_expired: true,
        ..market_data_runs::Transition::to(if exhausted {
            RunStatus::Failed
        } else {
            RunStatus::Queued
        })
    };
    match market_data_runs::transition(&cx.store, run, t).await {
        Ok(_) => {
            tracing::warn!(run_id = %run, failed = exhausted, "recovered a market-data run whose worker died");
            Ok(!exhausted)
        }
        Err(StoreError::InvalidTransition { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One dispatch round of reports (of every tenant): returns the number of tasks pushed.
pub async fn dispatch_reports(
    cx: &SyncContext,
    queue: &ReportQueue,
    settings: &DispatchSettings,
) -> Result<usize, StoreError> {
    let due = cx
        .store
        .claim_due_reports(settings.stale_after, settings.batch)
        .await?;
    let mut pushed = 0;
    for report in due {
        let task = ReportTask {
            report_id: RunId(report.report_id),
            tenant_id: TenantId(report.tenant_id),
        };
        if report.status == "running"
            && !crate::reports::requeue_abandoned(cx, task.tenant_id, report.report_id).await?
        {
            continue;
        }
        let push = u32::try_from(report.enqueue_count).unwrap_or(u32::MAX);
        match queue.push(task, push).await {
            Ok(()) => pushed += 1,
            Err(e) => {
                tracing::warn!(report_id = %task.report_id, error = %e, "could not push a due report")
            }
        }
    }
    Ok(pushed)
}

/// Reports the breakers whose state changed since the last report.
async fn report_breakers(cx: &SyncContext, reported: &mut HashMap<String, u64>) {
    let now = Utc::now();
    let changed: Vec<_> = cx
        .breakers
        .snapshots()
        .into_iter()
        .filter(|s| reported.get(&s.endpoint) != Some(&s.version))
        .collect();
    if changed.is_empty() {
        return;
    }
    let rows: Vec<BreakerRow> = changed
        .iter()
        .map(|s| BreakerRow {
            endpoint: s.endpoint.clone(),
            worker_id: cx.worker_id.clone(),
            state: s.state.as_str().to_owned(),
            consecutive_failures: i32::try_from(s.consecutive_failures).unwrap_or(i32::MAX),
            opened_at: s.opened_at,
            open_until: s.open_until,
            rejected_calls: i64::try_from(s.rejected_calls).unwrap_or(i64::MAX),
            updated_at: now,
        })
        .collect();
    match cx.store.report_breakers(&rows).await {
        Ok(()) => {
            for s in changed {
                reported.insert(s.endpoint, s.version);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not report circuit breaker states"),
    }
}
