//! Report jobs: one report of `reports` delivered by the queue, generated the way the pipeline
//! runs a sync. `begin` (queued -> running under a lease the heartbeat renews, only when due)
//! -> `assemble` (the statement's figures from the store, computed by `eam_wealth` as the API
//! computes them) -> `render` (each format asked for, `eam_report`) -> `archive` (each file
//! content-addressed under the tenant) -> the report `succeeded` with its files, in one
//! transaction. A statement that cannot be complete (a figure without a price or a rate) is a
//! `data` error: the report ends `failed` with it, and no file of it is ever served. Transient
//! errors (the archive or the database unreachable) wait with back-off for another attempt,
//! up to `max_attempts`. A worker that dies mid-report stops renewing its lease and the
//! dispatcher gives the report to another.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use eam_model::{ErrorClass, RunError, RunStatus};
use eam_queue::ReportTask;
use eam_store::reports::{self, NewFile, Report, Transition};
use eam_store::runs::Lease;
use eam_store::{Store, StoreError, TenantId};
use tokio::sync::watch;
use tracing::Instrument;

use crate::error::SyncError;
use crate::pipeline::{AfterFailure, AttemptOutcome, SyncContext, keep_lease};

/// What a report's rendering may add to the figures: the firm's logo (PNG), from settings.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub logo_png: Option<Vec<u8>>,
    /// Business days after which a rate is stale (the API's `fx.stale_after_business_days`).
    pub fx_stale_after: u32,
    /// Reports one worker generates at once.
    pub concurrency: usize,
}

/// What report jobs share in one worker process; cheap to clone.
#[derive(Clone)]
pub struct ReportJobs {
    cx: SyncContext,
    settings: Arc<ReportSettings>,
}

impl ReportJobs {
    pub fn new(cx: SyncContext, settings: ReportSettings) -> Self {
        ReportJobs {
            cx,
            settings: Arc::new(settings),
        }
    }

    fn lease(&self) -> Lease {
        Lease {
            owner: self.cx.worker_id.clone(),
            ttl: self.cx.policy.lease,
        }
    }
}

/// Runs one attempt of a report (see the module docs). `delivery` is the transport's count.
pub async fn run_attempt(jobs: &ReportJobs, task: ReportTask, delivery: u32) -> AttemptOutcome {
    let span = tracing::info_span!("report", report_id = %task.report_id,
        tenant_id = %task.tenant_id, delivery);
    let outcome = attempt_steps(jobs, task).instrument(span.clone()).await;
    span.in_scope(|| match &outcome {
        AttemptOutcome::Finished(status) => {
            tracing::info!(status = status.as_str(), "report attempt finished");
        }
        AttemptOutcome::Abandoned => tracing::info!("report attempt abandoned"),
        AttemptOutcome::Retry(_) | AttemptOutcome::Skipped => {}
    });
    outcome
}

async fn attempt_steps(jobs: &ReportJobs, task: ReportTask) -> AttemptOutcome {
    let store = &jobs.cx.store;
    let tenant = task.tenant_id;
    let id = task.report_id.0;
    let lease = jobs.lease();
    let report = match begin(store, tenant, id, &lease).await {
        Ok(Some(report)) => report,
        Ok(None) => return AttemptOutcome::Skipped,
        Err(e) => return AttemptOutcome::Retry(format!("could not start the report: {e}")),
    };
    let attempt = u32::try_from(report.attempts).unwrap_or(u32::MAX);
    tracing::info!(attempt, "report started");
    let (lost_tx, mut lost_rx) = watch::channel(false);
    let (renewing, held) = (store.clone(), lease.clone());
    let heartbeat = tokio::spawn(
        keep_lease(lease.ttl, "report", lost_tx, move || {
            renew_lease(renewing.clone(), tenant, id, held.clone())
        })
        .in_current_span(),
    );
    let result = tokio::select! {
        result = generate(jobs, tenant, &report) => Some(result),
        _ = lost_rx.wait_for(|lost| *lost) => None,
    };
    heartbeat.abort();
    let finished = match result {
        None => {
            tracing::warn!("the report was presumed dead and given to another worker; stopped");
            return AttemptOutcome::Abandoned;
        }
        Some(Ok(files)) => succeed(store, tenant, id, &lease, &files).await,
        Some(Err(e)) => {
            tracing::warn!(class = e.class.as_str(), error = %e.message, attempt,
                "report attempt failed");
            let t = Transition {
                only_if_lease_owner: Some(lease.owner.clone()),
                ..failure(&jobs.cx.policy, &e, attempt)
            };
            end(store, tenant, id, t).await
        }
    };
    match finished {
        Ok(r) => AttemptOutcome::Finished(r.status()),
        Err(StoreError::InvalidTransition { .. }) => AttemptOutcome::Abandoned,
        Err(e) => AttemptOutcome::Retry(format!("could not record the report's end: {e}")),
    }
}

/// The statement's figures, rendered in every format asked for and archived.
async fn generate(
    jobs: &ReportJobs,
    tenant: TenantId,
    report: &Report,
) -> Result<Vec<NewFile>, SyncError> {
    let statement = crate::statement::assemble(
        &jobs.cx.store,
        tenant,
        report,
        jobs.settings.logo_png.clone(),
        jobs.settings.fx_stale_after,
    )
    .await?;
    let mut files = Vec::with_capacity(report.formats.len());
    for format in &report.formats {
        let rendered = crate::statement::render(&statement, format)?;
        let stored = jobs
            .cx
            .archive
            .put(tenant, Bytes::from(rendered.bytes))
            .await?;
        files.push(NewFile {
            format: format.clone(),
            file_name: rendered.file_name,
            content_type: rendered.content_type.to_owned(),
            archive_key: stored.key,
            sha256: stored.sha256,
            size_bytes: stored.size,
            pages: rendered.pages,
        });
    }
    Ok(files)
}

/// What a failed attempt becomes (see [`AfterFailure`]).
fn failure(policy: &crate::SyncPolicy, e: &SyncError, attempt: u32) -> Transition {
    let after = AfterFailure::of(policy, e, attempt);
    Transition {
        error: Some(after.error),
        next_attempt_at: after.next_attempt_at,
        ..Transition::to(after.status)
    }
}

/// Moves the report to `running` under this worker's lease; `None` when it is not queued and
/// due, or unknown.
async fn begin(
    store: &Store,
    tenant: TenantId,
    id: uuid::Uuid,
    lease: &Lease,
) -> Result<Option<Report>, StoreError> {
    let t = Transition {
        new_attempt: true,
        lease: Some(lease.clone()),
        only_if_due: true,
        ..Transition::to(RunStatus::Running)
    };
    match end(store, tenant, id, t).await {
        Ok(report) => Ok(Some(report)),
        Err(StoreError::InvalidTransition { .. } | StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Applies one transition in its own transaction.
async fn end(
    store: &Store,
    tenant: TenantId,
    id: uuid::Uuid,
    t: Transition,
) -> Result<Report, StoreError> {
    let mut tx = store.tenant_tx(tenant).await?;
    let report = reports::transition(&mut tx, id, t).await?;
    tx.commit().await?;
    Ok(report)
}

/// Marks the report succeeded with its files, in one transaction, while the lease holds.
async fn succeed(
    store: &Store,
    tenant: TenantId,
    id: uuid::Uuid,
    lease: &Lease,
    files: &[NewFile],
) -> Result<Report, StoreError> {
    let mut tx = store.tenant_tx(tenant).await?;
    let report = reports::succeed(&mut tx, id, &lease.owner, files).await?;
    tx.commit().await?;
    Ok(report)
}

/// Renews a report's lease in its tenant's transaction.
async fn renew_lease(
    store: Store,
    tenant: TenantId,
    id: uuid::Uuid,
    lease: Lease,
) -> Result<bool, StoreError> {
    let mut tx = store.tenant_tx(tenant).await?;
    let renewed = reports::renew_lease(&mut tx, id, &lease).await?;
    tx.commit().await?;
    Ok(renewed)
}

/// Puts a report whose worker died back in the queue, or ends it `failed` when it has used
/// its attempts. False when the lease was renewed meanwhile.
pub(crate) async fn requeue_abandoned(
    cx: &SyncContext,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<bool, StoreError> {
    let mut tx = cx.store.tenant_tx(tenant).await?;
    let current = reports::get(&mut tx, id).await?;
    let exhausted = u32::try_from(current.attempts).unwrap_or(u32::MAX) >= cx.policy.max_attempts;
    let message = format!(
        "the worker running attempt {} stopped responding (its lease expired)",
        current.attempts
    );
    let t = Transition {
        error: Some(RunError::new(ErrorClass::Transient, message)),
        next_attempt_at: Some(Utc::now()),
        only_if_lease_expired: true,
        ..Transition::to(if exhausted {
            RunStatus::Failed
        } else {
            RunStatus::Queued
        })
    };
    match reports::transition(&mut tx, id, t).await {
        Ok(_) => {
            tx.commit().await?;
            tracing::warn!(report_id = %id, failed = exhausted, "recovered a report whose worker died");
            Ok(!exhausted)
        }
        Err(StoreError::InvalidTransition { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy() -> crate::SyncPolicy {
        crate::SyncPolicy {
            max_attempts: 3,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            ..crate::SyncPolicy::default()
        }
    }

    #[test]
    fn a_transient_failure_waits_for_another_attempt_until_the_last() {
        let e = SyncError::new(ErrorClass::Transient, "archive unavailable");
        let again = failure(&policy(), &e, 1);
        assert_eq!(again.to, RunStatus::Queued);
        assert!(again.next_attempt_at.is_some());
        let last = failure(&policy(), &e, 3);
        assert_eq!((last.to, last.next_attempt_at), (RunStatus::Failed, None));
    }

    #[test]
    fn an_incomplete_statement_fails_at_once() {
        let e = SyncError::new(ErrorClass::Data, "no AED rate on or before 2026-01-31");
        let t = failure(&policy(), &e, 1);
        assert_eq!(t.to, RunStatus::Failed);
        assert_eq!(
            t.error.map(|e| (e.class, e.message)),
            Some((
                ErrorClass::Data,
                "no AED rate on or before 2026-01-31".to_owned()
            ))
        );
    }
}
