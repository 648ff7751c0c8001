//! The sync pipeline: one bank connection, one run, as a sequence of named steps.
//!
//! `begin` (queued -> running, under a lease) -> `fetch` (raw documents from the bank) ->
//! `archive` (every document kept as received, content-addressed) -> `normalize` (pure parse)
//! -> `load` (records + the reconciliation of its statements and holdings, checked here and
//! recorded by the store + the documents' index + cursor + run status in ONE database
//! transaction). A failure before `load` commits leaves the data exactly as it was; the run
//! records the classified error, and the documents it archived, so that support can read the
//! one that did not parse.
//!
//! A replay (trigger `replay`) takes the place of `fetch` and `archive` with `restore`: the
//! documents an earlier run archived, read back and checked against their hashes. The bank is
//! not called, the cursor does not move, and the load is the same idempotent load.
//!
//! Secrets (client secret, client certificate and key, the bank's CA) are resolved per sync
//! through the process's [`SecretProvider`], so a rotated one is used without a restart; a
//! credential the bank refused is dropped from its cache.
//!
//! Leases make a run safe against dead and duplicate workers: `begin` only starts a run that
//! is queued and due, and takes a lease that a heartbeat renews while the sync runs. A worker
//! that dies stops renewing; the dispatcher (see `dispatch`) then puts the run back on the
//! queue. A duplicate delivery finds the run running and leaves it alone. If the lease is lost
//! (the run was cancelled, or presumed dead and given to another worker) the sync stops, and
//! in any case its final transition only applies while it still holds the lease, so a worker
//! that was presumed dead cannot commit a load over its successor's.
//!
//! Transient errors put the run back in the queue with a jittered exponential back-off (or the
//! bank's Retry-After, if longer), up to `max_attempts`; then the run is `dead`. Auth, data and
//! internal errors end it `failed` at once. A connection whose runs fail `pause_after_failures`
//! times in a row is paused.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use eam_config::SecretProvider;
use eam_config::egress::{self, EgressPolicy};
use eam_connectors::{
    Breakers, ConnectSettings, DocumentKind, ErrorClass, FileInfo, PositionHistory, RawDocument,
    Resume, RetryPolicy, TlsIdentity,
};
use eam_metrics::{Metrics, SyncOutcome};
use eam_model::breaks::Break;
use eam_model::{Protocol, RunError};
use eam_normalizer::model::{Batch, RejectedStatement, SourceFormat, StatementSummary};
use eam_normalizer::{bank_a, position_check, statement};
use eam_store::archive::Archive;
use eam_store::connections::{self, Connection};
use eam_store::custodian_limit;
use eam_store::documents::{self, NewDocument};
use eam_store::reconciliation;
use eam_store::runs::{self, AttemptError, Lease, RunStatus, Transition};
use eam_store::{RunId, Store, StoreError, TenantId, TenantTx};
use rand::Rng;
use serde_json::json;
use tokio::sync::watch;
use tracing::Instrument;

use crate::error::SyncError;

pub use eam_queue::SyncTask;

/// The tunables of syncs: timeouts, retries, leases, pausing.
#[derive(Debug, Clone)]
pub struct SyncPolicy {
    /// Per request to a bank.
    pub bank_timeout: Duration,
    /// Attempts of a run before a transient failure makes it `dead`.
    pub max_attempts: u32,
    /// Retries of a single request inside an attempt.
    pub request_retry: RetryPolicy,
    /// Back-off before the second attempt; doubles per attempt, jittered, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long a worker's claim on a running run holds without renewal.
    pub lease: Duration,
    /// Consecutive failed runs that pause a connection (0: never).
    pub pause_after_failures: u32,
    /// At most this many syncs of one custodian run at once, across all workers (`None`: no
    /// limit). Checked in `begin`.
    pub custodian_limit: Option<CustodianLimit>,
    /// Which addresses a bank URL may reach (private ones only in tests and the demo).
    pub egress: EgressPolicy,
}

/// The per-custodian concurrency limit (see `eam_store::custodian_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustodianLimit {
    /// Syncs of one custodian running at once.
    pub max_running: u32,
    /// How long a run over the limit waits, queued, before it tries again.
    pub recheck: Duration,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            bank_timeout: Duration::from_secs(30),
            max_attempts: 3,
            request_retry: RetryPolicy::default(),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            lease: Duration::from_secs(30),
            pause_after_failures: 5,
            custodian_limit: None,
            egress: EgressPolicy::default(),
        }
    }
}

/// Shared state of the sync steps in one worker process; cheap to clone.
#[derive(Clone)]
pub struct SyncContext {
    pub store: Store,
    pub policy: SyncPolicy,
    /// One circuit breaker per bank endpoint, shared by every job of this worker.
    pub breakers: Arc<Breakers>,
    /// Resolves the connections' secret references (cached, shared with nothing else here).
    pub secrets: SecretProvider,
    /// Where every fetched document is kept.
    pub archive: Archive,
    /// Names this worker in leases.
    pub worker_id: String,
    /// Where attempts, their duration and the records loaded are counted.
    pub metrics: Metrics,
    /// Runs this worker is running, to hand back on shutdown.
    in_flight: Arc<Mutex<HashMap<RunId, TenantId>>>,
}

impl SyncContext {
    pub fn new(
        store: Store,
        policy: SyncPolicy,
        breakers: Breakers,
        secrets: SecretProvider,
        archive: Archive,
    ) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        SyncContext {
            store,
            policy,
            breakers: Arc::new(breakers),
            secrets,
            archive,
            worker_id: format!("{host}-{}-{}", std::process::id(), &suffix[..8]),
            metrics: Metrics::default(),
            in_flight: Arc::default(),
        }
    }

    /// Counts into `metrics` (shared with the process's other parts, e.g. the API's
    /// `/metrics`), and shows this worker's breakers there.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        metrics.watch_breakers(self.breakers.clone() as Arc<dyn eam_model::BreakerSource>);
        self.metrics = metrics;
        self
    }

    fn lease(&self) -> Lease {
        Lease {
            owner: self.worker_id.clone(),
            ttl: self.policy.lease,
        }
    }

    fn track(&self, task: SyncTask) -> InFlight<'_> {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.run_id, task.tenant_id);
        InFlight {
            cx: self,
            run: task.run_id,
        }
    }
}

/// Removes a run from the in-flight registry when its attempt ends, however it ends.
struct InFlight<'a> {
    cx: &'a SyncContext,
    run: RunId,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.cx
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.run);
    }
}

/// How an attempt ended, for the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The attempt ended and PostgreSQL recorded how: a terminal status, or `queued` again
    /// for a later attempt (which the dispatcher will push when it is due).
    Finished(RunStatus),
    /// The outcome could not be recorded (PostgreSQL unreachable): deliver the task again.
    Retry(String),
    /// Nothing to do: the run is terminal, not due yet, or running elsewhere.
    Skipped,
    /// The run was cancelled or given to another worker while this one ran it: it stopped
    /// without loading anything.
    Abandoned,
}

/// Overlap when re-fetching transactions: late bookings within this window are picked up.
const CURSOR_OVERLAP_DAYS: u64 = 7;

/// Runs one attempt of a sync. `delivery` is the transport's delivery count (from 1), for
/// logs; the attempt number that decides `dead` is the one PostgreSQL counts.
///
/// Every log line of the attempt, the connectors' included, is inside the `sync` span: the run,
/// the tenant, the connection and, once the run is started, the id of the API request that
/// created it (`request_id`), so one grep finds a sync from the API call to the bank calls.
pub async fn run_attempt(cx: &SyncContext, task: SyncTask, delivery: u32) -> AttemptOutcome {
    let span = tracing::info_span!("sync", run_id = %task.run_id, tenant_id = %task.tenant_id,
        connection_id = %task.connection_id, request_id = tracing::field::Empty, delivery);
    let outcome = attempt_steps(cx, task).instrument(span.clone()).await;
    span.in_scope(|| match &outcome {
        AttemptOutcome::Finished(status) => {
            tracing::info!(status = status.as_str(), "sync attempt finished");
        }
        AttemptOutcome::Abandoned => tracing::info!("sync attempt abandoned"),
        AttemptOutcome::Retry(_) | AttemptOutcome::Skipped => {}
    });
    outcome
}

async fn attempt_steps(cx: &SyncContext, task: SyncTask) -> AttemptOutcome {
    let lease = cx.lease();
    let started = match begin(cx, task, &lease).await {
        Ok(Some(started)) => started,
        Ok(None) => return AttemptOutcome::Skipped,
        Err(e) => return AttemptOutcome::Retry(format!("could not start the run: {e}")),
    };
    if let Some(request_id) = &started.request_id {
        tracing::Span::current().record("request_id", request_id.as_str());
    }
    let attempt = started.attempt;
    tracing::info!(attempt, trigger = %started.trigger, "sync started");
    let _in_flight = cx.track(task);
    let clock = Instant::now();
    let (lost_tx, mut lost_rx) = watch::channel(false);
    let (store, held) = (cx.store.clone(), lease.clone());
    let heartbeat = tokio::spawn(
        keep_lease(lease.ttl, "run", lost_tx, move || {
            renew_run_lease(store.clone(), task, held.clone())
        })
        .in_current_span(),
    );
    let mut findings = Findings {
        trace_id: started
            .request_id
            .clone()
            .filter(|id| eam_model::trace::is_trace_id(id))
            .unwrap_or_else(|| task.run_id.0.simple().to_string()),
        ..Findings::default()
    };
    let result = tokio::select! {
        result = sync(cx, task, &lease, attempt, &mut findings) => Some(result),
        _ = lost_rx.wait_for(|lost| *lost) => None,
    };
    heartbeat.abort();
    let outcome = match result {
        None => {
            tracing::warn!(
                "the run was cancelled or presumed dead and given to another worker; stopped without loading"
            );
            AttemptOutcome::Abandoned
        }
        Some(Ok(status)) => AttemptOutcome::Finished(status),
        Some(Err(e)) => {
            tracing::warn!(class = e.class.as_str(), error = %e.message, attempt, "sync attempt failed");
            if e.class == ErrorClass::Auth {
                // The bank (or the secrets manager) refused them: ask again next time rather
                // than present the same credentials until the cache expires.
                for reference in &findings.references {
                    cx.secrets.invalidate(reference);
                }
            }
            match record_failure(cx, task, &e, attempt, &lease, &findings).await {
                Ok(status) => AttemptOutcome::Finished(status),
                // The failure could not even be recorded (database down): let the queue retry.
                Err(record_err) => {
                    AttemptOutcome::Retry(format!("{e}; and recording it failed: {record_err}"))
                }
            }
        }
    };
    cx.metrics.observe_sync(
        findings.custodian.as_deref().unwrap_or("unknown"),
        metric_outcome(&outcome),
        clock.elapsed(),
    );
    outcome
}

/// How an attempt that began ended, as the metrics name it.
fn metric_outcome(outcome: &AttemptOutcome) -> SyncOutcome {
    match outcome {
        AttemptOutcome::Finished(status) => match status {
            RunStatus::Succeeded => SyncOutcome::Succeeded,
            RunStatus::SucceededWithBreaks => SyncOutcome::SucceededWithBreaks,
            RunStatus::Queued => SyncOutcome::Retrying,
            RunStatus::Failed => SyncOutcome::Failed,
            RunStatus::Dead => SyncOutcome::Dead,
            RunStatus::Cancelled => SyncOutcome::Cancelled,
            // Still running: another worker has it now.
            RunStatus::Running => SyncOutcome::Abandoned,
        },
        AttemptOutcome::Abandoned | AttemptOutcome::Skipped => SyncOutcome::Abandoned,
        AttemptOutcome::Retry(_) => SyncOutcome::Unrecorded,
    }
}

/// A run this worker has just started.
struct Started {
    /// The attempt number, as PostgreSQL counts it.
    attempt: u32,
    trigger: String,
    /// The API request that created the run.
    request_id: Option<String>,
}

/// Moves the run to `running` under this worker's lease; `None` when the run is not queued
/// and due (terminal, running elsewhere, waiting for its retry time) or unknown.
async fn begin(
    cx: &SyncContext,
    task: SyncTask,
    lease: &Lease,
) -> Result<Option<Started>, StoreError> {
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    // Over the custodian's limit, the run stays queued a little longer (the dispatcher pushes
    // it again then). The check holds the custodian's lock until this transaction ends.
    if let Some(limit) = cx.policy.custodian_limit
        && !custodian_limit::has_free_slot(&mut tx, task.connection_id, limit.max_running).await?
    {
        if custodian_limit::postpone(&mut tx, task.run_id, limit.recheck).await? {
            tracing::info!(
                max_running = limit.max_running,
                "the custodian's limit of running syncs is reached; the run waits"
            );
        }
        tx.commit().await?;
        return Ok(None);
    }
    let t = Transition {
        new_attempt: true,
        lease: Some(lease.clone()),
        only_if_due: true,
        ..Transition::to(RunStatus::Running)
    };
    match runs::transition(&mut tx, task.run_id, t).await {
        Ok(run) => {
            tx.commit().await?;
            Ok(Some(Started {
                attempt: u32::try_from(run.attempts).unwrap_or(u32::MAX),
                trigger: run.trigger,
                request_id: run.request_id,
            }))
        }
        Err(StoreError::InvalidTransition { .. }) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Renews a lease every third of its lifetime through `renew` until it is lost (`renew`
/// answers false: the job is no longer running under it), then says so on `lost`. A database
/// hiccup is retried at the next tick: the lease outlives it. The heartbeat of every job kind
/// (syncs, market-data runs, reports); `what` names the job in the log.
pub(crate) async fn keep_lease<F, Fut>(
    ttl: Duration,
    what: &'static str,
    lost: watch::Sender<bool>,
    mut renew: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>>,
{
    let mut tick = tokio::time::interval(ttl / 3);
    tick.tick().await; // the first tick is immediate; begin just took the lease
    loop {
        tick.tick().await;
        match renew().await {
            Ok(true) => {}
            Ok(false) => {
                let _ = lost.send(true);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the {what}'s lease; trying again")
            }
        }
    }
}

/// Renews a sync run's lease in its tenant's transaction.
async fn renew_run_lease(store: Store, task: SyncTask, lease: Lease) -> Result<bool, StoreError> {
    let mut tx = store.tenant_tx(task.tenant_id).await?;
    let renewed = runs::renew_lease(&mut tx, task.run_id, &lease).await?;
    tx.commit().await?;
    Ok(renewed)
}

/// What an attempt learnt on its way, recorded however it ends.
#[derive(Debug, Default)]
struct Findings {
    /// The connection's custodian (for the metrics), once read.
    custodian: Option<String>,
    /// The run is a replay of this one's documents.
    replay_of: Option<RunId>,
    /// The connection's secret references this attempt resolved.
    references: Vec<String>,
    /// The notAfter of the client certificate it presented.
    cert_expires_at: Option<chrono::DateTime<Utc>>,
    /// The documents it archived.
    archived: Vec<NewDocument>,
    /// For a replay: how many archived documents it read back.
    restored: usize,
    /// The W3C trace its bank requests carry: the request id of the API call that started the
    /// run when it is a trace id (the caller's trace, or the API's own id), else the run's id.
    trace_id: String,
}

async fn sync(
    cx: &SyncContext,
    task: SyncTask,
    lease: &Lease,
    attempt: u32,
    findings: &mut Findings,
) -> Result<RunStatus, SyncError> {
    let (connection, run) = {
        let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
        (
            connections::get(&mut tx, task.connection_id).await?,
            runs::get(&mut tx, task.run_id).await?,
        )
    };
    findings.custodian = Some(connection.custodian.clone());
    if let Some(source) = run.replay_of {
        findings.replay_of = Some(RunId(source));
        let documents = restore(cx, task, RunId(source)).await?;
        findings.restored = documents.len();
        let (batch, _) = parse_off_runtime(&connection, std::sync::Arc::new(documents)).await?;
        return load(cx, task, &connection, &batch, None, lease, findings).await;
    }
    // Each step's wall time goes into one log line: where a slow night's sync spent it.
    let clock = std::time::Instant::now();
    let fetched = fetch(cx, &connection, findings).await?;
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let fetch_ms = ms(clock.elapsed());
    // Archiving (I/O) and parsing (CPU, on a blocking thread) run side by side. Every document
    // is archived whatever the parse finds, and the archive's outcome is looked at first: a
    // document that does not parse is still there for support to read.
    let documents = std::sync::Arc::new(fetched.documents);
    let parsing = parse_off_runtime(&connection, documents.clone());
    let (archived, parsed) = tokio::join!(
        async {
            let archived = archive(cx, task, attempt, &documents).await;
            (archived, ms(clock.elapsed()) - fetch_ms)
        },
        parsing
    );
    let (archived, archive_ms) = archived;
    findings.archived = archived?;
    let (batch, normalize_time) = parsed?;
    let normalize_ms = ms(normalize_time);
    let load_start = clock.elapsed();
    let status = load(
        cx,
        task,
        &connection,
        &batch,
        fetched.files_after,
        lease,
        findings,
    )
    .await?;
    let load_ms = ms(clock.elapsed() - load_start);
    tracing::info!(
        documents = documents.len(),
        fetch_ms,
        archive_ms,
        normalize_ms,
        load_ms,
        "sync steps timed"
    );
    Ok(status)
}

/// What a fetch brought, and where the cursor goes once it is loaded.
struct Fetched {
    documents: Vec<RawDocument>,
    /// For file-based banks: the last file fetched (the next sync asks for files after it).
    files_after: Option<String>,
}

/// Fetches the raw documents the connection's cursor says are new.
///
/// Before anything is resolved or sent, the connection is checked as the API checked it when
/// it was stored (a row may have been changed behind the API's back): every secret reference
/// inside the tenant's scope, and the bank's address the one the custodian registry names (or
/// one of its allowed hosts) on public addresses. A refusal fails the run `auth`, with nothing
/// read and nothing sent.
async fn fetch(
    cx: &SyncContext,
    connection: &Connection,
    findings: &mut Findings,
) -> Result<Fetched, SyncError> {
    let tenant_refs = [
        &connection.client_secret_ref,
        &connection.client_cert_ref,
        &connection.client_key_ref,
    ];
    findings.references = tenant_refs
        .into_iter()
        .chain([&connection.ca_cert_ref])
        .flatten()
        .cloned()
        .collect();
    for reference in tenant_refs.into_iter().flatten() {
        cx.secrets
            .tenant_scope()
            .check(connection.tenant_id, reference)?;
    }
    destination(cx, connection).await?;
    let tls = tls_identity(&cx.secrets, connection).await?;
    // An unreadable certificate is the connector's to refuse, with its own message.
    findings.cert_expires_at = (!tls.client_cert_pem.is_empty())
        .then(|| eam_connectors::certificate::not_after(&tls.client_cert_pem).ok())
        .flatten();
    let protocol = Protocol::parse(&connection.protocol).ok_or_else(|| {
        SyncError::internal(format!("protocol {} is not supported", connection.protocol))
    })?;
    // Only what the protocol uses is resolved.
    let secret = if protocol.credentials().secret {
        Some(secret(&cx.secrets, connection).await?)
    } else {
        None
    };
    let transport = eam_connectors::open(
        protocol,
        ConnectSettings {
            base_url: connection.base_url.clone(),
            tls,
            client_id: connection.client_id.clone(),
            secret,
            timeout: cx.policy.bank_timeout,
            retry: cx.policy.request_retry.clone(),
            breaker: Some(cx.breakers.for_url(&connection.base_url)),
            egress: cx.policy.egress,
        },
    )?;
    let resume = Resume {
        since: cursor_date(&connection.cursor),
        files_after: files_after(&connection.cursor).map(str::to_owned),
        position_history: PositionHistory {
            days: u32::try_from(connection.position_history_days).unwrap_or(0),
            after: cursor_day(&connection.cursor, "positions_through"),
        },
    };
    let fetched =
        eam_connectors::traced(findings.trace_id.clone(), transport.fetch(&resume)).await?;
    Ok(Fetched {
        documents: fetched.documents,
        files_after: fetched.last_file_id,
    })
}

/// Checks where the connection would connect: the custodian registry's URL, or the
/// connection's own where the custodian allows one and its host is among the registry's
/// allowed hosts; every address of the host allowed by the egress rule.
async fn destination(cx: &SyncContext, connection: &Connection) -> Result<(), SyncError> {
    let refused = |why: String| {
        SyncError::new(
            ErrorClass::Auth,
            format!("refused destination: {why}; nothing was sent"),
        )
    };
    let Some(registry_url) = connection.registry_base_url.as_deref() else {
        return Err(refused(format!(
            "custodian {} has no address in the platform's custodian registry (a platform admin sets it)",
            connection.custodian
        )));
    };
    let url = connection.base_url.as_str();
    let host = egress::host_of(url).unwrap_or_default();
    let registry_host = egress::host_of(registry_url).unwrap_or_default();
    let named = host == registry_host
        || (connection.tenant_urls && egress::host_allowed(&host, &connection.allowed_hosts));
    if !named {
        return Err(refused(format!(
            "{host} is not a host the custodian registry names for {}",
            connection.custodian
        )));
    }
    match cx.policy.egress.check_url(url).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_transient() => Err(SyncError::new(ErrorClass::Transient, e.to_string())),
        Err(e) => Err(refused(e.to_string())),
    }
}

/// The connection's client secret or API key, resolved from its reference in the tenant's
/// scope.
async fn secret(secrets: &SecretProvider, connection: &Connection) -> Result<String, SyncError> {
    let reference = connection.client_secret_ref.as_deref().ok_or_else(|| {
        SyncError::new(
            ErrorClass::Auth,
            "the connection has no client secret reference",
        )
    })?;
    Ok(secrets
        .resolve_tenant_text(connection.tenant_id, reference)
        .await?)
}

/// The client certificate and key (the tenant's references) and the bank's CA (the
/// registry's, a platform reference).
async fn tls_identity(
    secrets: &SecretProvider,
    connection: &Connection,
) -> Result<TlsIdentity, SyncError> {
    let tenant = |reference: &Option<String>| {
        let reference = reference.clone();
        async move {
            match reference {
                Some(r) => secrets.resolve_tenant(connection.tenant_id, &r).await,
                None => Ok(Vec::new()),
            }
        }
    };
    Ok(TlsIdentity {
        client_cert_pem: tenant(&connection.client_cert_ref).await?,
        client_key_pem: tenant(&connection.client_key_ref).await?,
        ca_pem: match &connection.ca_cert_ref {
            Some(r) => secrets.resolve_platform(r).await?,
            None => Vec::new(),
        },
    })
}

/// Documents archived at once: enough to hide the storage's latency.
const ARCHIVE_CONCURRENCY: usize = 4;

/// Keeps every fetched document in the archive, as received, whatever parsing it finds (the
/// sync looks at the archive's outcome before the parse's), and returns the index rows to
/// record with the run.
async fn archive(
    cx: &SyncContext,
    task: SyncTask,
    attempt: u32,
    documents: &[RawDocument],
) -> Result<Vec<NewDocument>, SyncError> {
    use futures::{StreamExt, TryStreamExt};
    let fetched_at = Utc::now();
    let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
    // The futures are made up front: a closure inside the stream would make this future's
    // Send-ness depend on a higher-ranked lifetime the queue's spawn cannot prove.
    let puts: Vec<_> = documents
        .iter()
        .map(|doc| cx.archive.put(task.tenant_id, doc.body.clone()))
        .collect();
    let stored: Vec<eam_store::archive::Stored> = futures::stream::iter(puts)
        .buffered(ARCHIVE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(documents
        .iter()
        .zip(stored)
        .enumerate()
        .map(|(seq, (doc, stored))| NewDocument {
            connection: task.connection_id,
            run: task.run_id,
            attempt,
            seq: i32::try_from(seq).unwrap_or(i32::MAX),
            name: doc.name(),
            kind: doc.kind.as_str().to_owned(),
            account_ref: doc.account_id.clone(),
            page: i32::try_from(doc.page).unwrap_or(i32::MAX),
            file_id: doc.file.as_ref().map(|f| f.id.clone()),
            format: doc.file.as_ref().map_or_else(
                || SourceFormat::BankAJson.as_str().to_owned(),
                |f| f.format.clone(),
            ),
            size: i64::try_from(stored.size).unwrap_or(i64::MAX),
            sha256: stored.sha256,
            storage_key: stored.key,
            fetched_at,
        })
        .collect())
}

/// The documents a run archived, read back from the archive (each checked against its hash)
/// in the order they were fetched: what a replay normalizes instead of asking the bank.
async fn restore(
    cx: &SyncContext,
    task: SyncTask,
    source: RunId,
) -> Result<Vec<RawDocument>, SyncError> {
    let archived = {
        let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
        documents::of_run(&mut tx, source).await?
    };
    if archived.is_empty() {
        return Err(SyncError::internal(format!(
            "run {source} archived no documents: there is nothing to replay"
        )));
    }
    let mut restored = Vec::with_capacity(archived.len());
    for d in archived {
        let kind = DocumentKind::parse(&d.kind).ok_or_else(|| {
            SyncError::internal(format!(
                "archived document {}: unknown kind {}",
                d.id, d.kind
            ))
        })?;
        let body = cx.archive.get(&d.storage_key, &d.sha256).await?;
        restored.push(RawDocument {
            kind,
            account_id: d.account_ref,
            page: u32::try_from(d.page).unwrap_or_default(),
            body,
            file: (kind == DocumentKind::StatementFile).then(|| FileInfo {
                id: d.file_id.unwrap_or_default(),
                name: d.name,
                format: d.format,
            }),
        });
    }
    Ok(restored)
}

/// [`normalize`] on a blocking thread (a large sync parses for seconds), with how long it took.
async fn parse_off_runtime(
    connection: &Connection,
    documents: std::sync::Arc<Vec<RawDocument>>,
) -> Result<(Batch, std::time::Duration), SyncError> {
    let connection = connection.clone();
    let (batch, took) = tokio::task::spawn_blocking(move || {
        let clock = std::time::Instant::now();
        (normalize(&connection, &documents), clock.elapsed())
    })
    .await
    .map_err(|e| SyncError::internal(format!("the parse did not finish: {e}")))?;
    Ok((batch?, took))
}

/// Parses every document; one unreadable document fails the whole sync (nothing is loaded).
fn normalize(connection: &Connection, documents: &[RawDocument]) -> Result<Batch, SyncError> {
    let mut batch = Batch::default();
    for doc in documents {
        let name = doc.name();
        let page = |kind| bank_a::parse(kind, &connection.custodian, &name, &doc.body);
        let parsed = match (doc.kind, &doc.file) {
            (DocumentKind::StatementFile, Some(file)) => {
                let format = SourceFormat::parse(&file.format)
                    .filter(|f| *f != SourceFormat::BankAJson)
                    .ok_or_else(|| {
                        SyncError::new(
                            ErrorClass::Data,
                            format!(
                                "{name}: the bank lists it in an unknown format '{}'",
                                file.format
                            ),
                        )
                    })?;
                statement::parse(format, &connection.custodian, &name, &doc.body)?
            }
            (DocumentKind::StatementFile, None) => {
                return Err(SyncError::internal(format!(
                    "{name}: a statement file without its listing"
                )));
            }
            (DocumentKind::Accounts, _) => page(bank_a::DocumentKind::Accounts)?,
            (DocumentKind::Positions, _) => page(bank_a::DocumentKind::Positions)?,
            (DocumentKind::Balances, _) => page(bank_a::DocumentKind::Balances)?,
            (DocumentKind::Transactions, _) => page(bank_a::DocumentKind::Transactions)?,
            // Market data is platform-wide and never part of a bank connection's sync.
            (DocumentKind::ReferenceRates, _) => {
                return Err(SyncError::internal(format!(
                    "{name}: reference rates in a bank connection's documents"
                )));
            }
        };
        batch.extend(parsed);
    }
    batch.dedup_securities();
    batch.merge_transactions();
    Ok(batch)
}

/// Checks the sync's statements (balance, continuity, sequence), chained to where each
/// account's statements ended in the previous syncs, then records the breaks and moves the
/// chain ends forward; returns how many breaks there were. A replay checks its statements
/// against each other only and leaves the chains alone: they have moved on since those
/// statements were fetched, and a replay must not move them back.
async fn reconcile(
    tx: &mut TenantTx,
    task: SyncTask,
    statements: &[StatementSummary],
    rejected: &[RejectedStatement],
    replay: bool,
) -> Result<u64, SyncError> {
    // A statement left out of its file (its neighbours loaded) is a break on the run.
    let unreadable: Vec<Break> = rejected.iter().map(Break::unreadable).collect();
    reconciliation::record_breaks(tx, task.connection_id, task.run_id, &unreadable).await?;
    if statements.is_empty() {
        return Ok(unreadable.len() as u64);
    }
    let previous = if replay {
        BTreeMap::new()
    } else {
        let mut accounts: Vec<&str> = statements.iter().map(|s| s.account.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        reconciliation::chain_ends(tx, task.connection_id, &accounts).await?
    };
    let (breaks, ends) = eam_normalizer::reconcile::check(statements, &previous);
    reconciliation::record_breaks(tx, task.connection_id, task.run_id, &breaks).await?;
    if !replay {
        reconciliation::record_chain_ends(tx, task.connection_id, task.run_id, &ends).await?;
    }
    Ok((unreadable.len() + breaks.len()) as u64)
}

/// Checks each complete holdings snapshot of the sync against the account's previous one
/// (earlier in the sync, else the latest stored before it) plus the securities transactions
/// stored in between, this sync's included: it runs after the load, in its transaction. Records
/// the breaks and returns how many there were. A replay is checked the same way: what came
/// before its snapshots has not moved on as statement chains do.
async fn reconcile_positions(
    tx: &mut TenantTx,
    task: SyncTask,
    batch: &Batch,
) -> Result<u64, SyncError> {
    let snapshots = position_check::snapshots(batch);
    if snapshots.is_empty() {
        return Ok(0);
    }
    let firsts: Vec<(&str, NaiveDate)> = snapshots
        .iter()
        .filter_map(|(account, list)| Some((account.as_str(), list.first()?.as_of)))
        .collect();
    let stored = reconciliation::positions_before(tx, task.connection_id, &firsts).await?;
    let periods = position_check::periods(&snapshots, &stored);
    let transactions =
        reconciliation::securities_transactions(tx, task.connection_id, &periods).await?;
    let breaks = position_check::check_batch(batch, &snapshots, &stored, &transactions);
    reconciliation::record_breaks(tx, task.connection_id, task.run_id, &breaks).await?;
    Ok(breaks.len() as u64)
}

/// Loads the batch, records the archived documents, moves the cursor and finishes the run,
/// all in one transaction, and only while this worker still holds the run's lease (the
/// tenant's shared securities before it, in a short one of their own). A replay
/// loads the same way but leaves the cursor, the statement chains and the connection's
/// failure streak alone: it did not talk to the bank.
async fn load(
    cx: &SyncContext,
    task: SyncTask,
    connection: &Connection,
    batch: &Batch,
    files_after: Option<String>,
    lease: &Lease,
    findings: &Findings,
) -> Result<RunStatus, SyncError> {
    // The tenant's shared securities first, committed on their own (see `load_securities`):
    // another connection's sync of the tenant then never waits for this whole load.
    let mut shared = cx.store.tenant_tx(task.tenant_id).await?;
    let securities = eam_store::load::load_securities(&mut shared, task.run_id, batch).await?;
    shared.commit().await?;
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    // One load per connection at a time: a second worker waits here rather than interleaving.
    let locked = connections::lock(&mut tx, task.connection_id).await?;
    let counts = eam_store::load::load_batch_after_securities(
        &mut tx,
        task.connection_id,
        task.run_id,
        batch,
        findings.replay_of,
        securities,
    )
    .await?;
    let replay = findings.replay_of.is_some();
    let breaks = reconcile(&mut tx, task, &batch.statements, &batch.rejected, replay).await?
        + reconcile_positions(&mut tx, task, batch).await?;
    let archived = record_findings(&mut tx, task, findings).await?;
    let cursor_after = if replay {
        locked.cursor.clone()
    } else {
        let cursor_after = next_cursor(&locked.cursor, batch, files_after);
        connections::set_cursor(&mut tx, task.connection_id, &cursor_after).await?;
        connections::record_outcome(
            &mut tx,
            task.connection_id,
            true,
            cx.policy.pause_after_failures,
            None,
        )
        .await?;
        cursor_after
    };
    let mut counts_json =
        serde_json::to_value(&counts).map_err(|e| SyncError::internal(e.to_string()))?;
    counts_json["breaks"] = json!(breaks);
    counts_json["warnings"] = json!(batch.warnings.len());
    counts_json["warning_samples"] = warning_samples(&batch.warnings);
    // Documents archived by this sync, or read back from the archive by a replay.
    counts_json["documents"] = json!(if replay { findings.restored } else { archived });
    // A sync whose data loads but does not add up is never a plain success.
    let status = if breaks > 0 {
        RunStatus::SucceededWithBreaks
    } else {
        RunStatus::Succeeded
    };
    let t = Transition {
        counts: Some(counts_json),
        cursor_before: Some(if replay {
            locked.cursor.clone()
        } else {
            connection.cursor.clone()
        }),
        cursor_after: Some(cursor_after),
        only_if_lease_owner: Some(lease.owner.clone()),
        ..Transition::to(status)
    };
    match runs::transition(&mut tx, task.run_id, t).await {
        Ok(_) => {}
        // Cancelled, or given to another worker, meanwhile: roll back, nothing half-loaded.
        Err(StoreError::InvalidTransition { from, .. }) => {
            tracing::warn!(status = %from, "the run changed hands before its load committed; rolled back");
            return RunStatus::parse(&from)
                .ok_or_else(|| SyncError::internal("unknown run status"));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    let effects = |k: eam_store::load::KindCounts| eam_metrics::Effects {
        inserted: k.inserted,
        updated: k.updated,
        unchanged: k.unchanged,
    };
    cx.metrics.count_loaded(
        &connection.custodian,
        &[
            ("clients", effects(counts.clients)),
            ("accounts", effects(counts.accounts)),
            ("securities", effects(counts.securities)),
            ("positions", effects(counts.positions)),
            ("cash_balances", effects(counts.balances)),
            ("transactions", effects(counts.transactions)),
            ("prices", effects(counts.prices)),
        ],
        counts.positions_closed,
    );
    tracing::info!(changed = counts.changed(), breaks, replay, "sync loaded");
    Ok(status)
}

/// Records what the attempt archived and the certificate it presented, in the attempt's
/// final transaction; returns how many documents were archived.
async fn record_findings(
    tx: &mut eam_store::TenantTx,
    task: SyncTask,
    findings: &Findings,
) -> Result<usize, SyncError> {
    documents::record(tx, &findings.archived).await?;
    if findings.replay_of.is_none() {
        connections::record_certificate_expiry(tx, task.connection_id, findings.cert_expires_at)
            .await?;
    }
    Ok(findings.archived.len())
}

/// Records a failed attempt: back to `queued` until its retry time, or the final failed/dead
/// status (which counts towards pausing the connection).
async fn record_failure(
    cx: &SyncContext,
    task: SyncTask,
    e: &SyncError,
    attempt: u32,
    lease: &Lease,
    findings: &Findings,
) -> Result<RunStatus, StoreError> {
    let retry = e.class == ErrorClass::Transient && attempt < cx.policy.max_attempts;
    let to = if retry {
        RunStatus::Queued
    } else if e.class == ErrorClass::Transient {
        RunStatus::Dead
    } else {
        RunStatus::Failed
    };
    let next_attempt_at = retry.then(|| {
        let wait = retry_delay(&cx.policy, attempt).max(e.retry_after.unwrap_or_default());
        Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
    });
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    let error = if retry {
        None
    } else if e.breaker_open {
        let earlier = runs::get(&mut tx, task.run_id).await?.attempt_errors;
        Some(e.final_error(&earlier))
    } else {
        Some(RunError::new(e.class, e.message.clone()))
    };
    let t = Transition {
        attempt_error: Some(AttemptError {
            attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
            at: Utc::now(),
            class: e.class,
            message: e.message.clone(),
        }),
        // The run's own error is its final one (its cause, when a breaker hid it); a failure
        // it retries stays an attempt error.
        error,
        next_attempt_at,
        only_if_lease_owner: Some(lease.owner.clone()),
        ..Transition::to(to)
    };
    let run = match runs::transition(&mut tx, task.run_id, t).await {
        Ok(run) => run,
        // Cancelled or given to another worker meanwhile: its status stands.
        Err(StoreError::InvalidTransition { from, .. }) => {
            return Ok(RunStatus::parse(&from).unwrap_or(RunStatus::Failed));
        }
        Err(other) => return Err(other),
    };
    // A document that did not parse stays readable for support, and replayable after a fix.
    documents::record(&mut tx, &findings.archived).await?;
    if findings.cert_expires_at.is_some() {
        connections::record_certificate_expiry(
            &mut tx,
            task.connection_id,
            findings.cert_expires_at,
        )
        .await?;
    }
    // A replay did not talk to the bank: its failure says nothing about the connection.
    if !retry && findings.replay_of.is_none() {
        let paused = connections::record_outcome(
            &mut tx,
            task.connection_id,
            false,
            cx.policy.pause_after_failures,
            Some(&e.message),
        )
        .await?;
        if paused {
            tracing::warn!("the connection was paused after repeated failed runs");
        }
    }
    tx.commit().await?;
    if let Some(at) = run.next_attempt_at {
        tracing::info!(next_attempt_at = %at, "the run will be retried");
    }
    Ok(run.status())
}

/// The back-off before attempt `attempt + 1`: base × 2^(attempt-1), capped, with jitter
/// between half and all of it, so runs that failed together do not retry together.
pub fn retry_delay(policy: &SyncPolicy, attempt: u32) -> Duration {
    let exp = policy
        .retry_base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(policy.retry_max);
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// What a job's failed attempt becomes: `queued` again at the back-off (or the Retry-After
/// asked, if longer) for a transient error while attempts remain, else `failed`; with the
/// error it records. Market-data runs and reports decide with it; syncs, which also die and
/// pause, decide in [`run_attempt`]'s own steps.
pub struct AfterFailure {
    pub status: RunStatus,
    pub next_attempt_at: Option<chrono::DateTime<Utc>>,
    pub error: RunError,
}

impl AfterFailure {
    pub fn of(policy: &SyncPolicy, e: &SyncError, attempt: u32) -> AfterFailure {
        let error = RunError::new(e.class, e.message.clone());
        if e.class != ErrorClass::Transient || attempt >= policy.max_attempts {
            return AfterFailure {
                status: RunStatus::Failed,
                next_attempt_at: None,
                error,
            };
        }
        let wait = retry_delay(policy, attempt).max(e.retry_after.unwrap_or_default());
        AfterFailure {
            status: RunStatus::Queued,
            next_attempt_at: Some(
                Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
            ),
            error,
        }
    }
}

/// Puts the runs this worker still runs back on the queue (shutdown past its grace period):
/// they start again elsewhere at once, instead of waiting for their leases to expire. A sync
/// still running here cannot commit afterwards: it no longer holds the lease.
pub async fn hand_back(cx: &SyncContext) {
    let runs: Vec<(RunId, TenantId)> = cx
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(r, t)| (*r, *t))
        .collect();
    for (run, tenant) in runs {
        let handed = async {
            let mut tx = cx.store.tenant_tx(tenant).await?;
            let t = Transition {
                attempt_error: Some(AttemptError {
                    attempt: 0,
                    at: Utc::now(),
                    class: ErrorClass::Transient,
                    message: "the worker shut down before the sync finished; handed back".into(),
                }),
                next_attempt_at: Some(Utc::now()),
                only_if_lease_owner: Some(cx.worker_id.clone()),
                ..Transition::to(RunStatus::Queued)
            };
            runs::transition(&mut tx, run, t).await?;
            tx.commit().await
        }
        .await;
        match handed {
            Ok(()) => tracing::info!(run_id = %run, "handed the run back to the queue"),
            Err(e) => tracing::warn!(run_id = %run, error = %e,
                "could not hand the run back; it restarts when its lease expires"),
        }
    }
}

/// The date to fetch transactions from, if the connection has synced before.
fn cursor_date(cursor: &serde_json::Value) -> Option<NaiveDate> {
    cursor_day(cursor, "transactions_from")
}

/// A date the cursor keeps under `key`.
fn cursor_day(cursor: &serde_json::Value, key: &str) -> Option<NaiveDate> {
    cursor
        .get(key)
        .and_then(|v| v.as_str())
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// The file a file-based bank's next sync continues after.
fn files_after(cursor: &serde_json::Value) -> Option<&str> {
    cursor.get("files_after").and_then(|v| v.as_str())
}

/// The cursor after a batch. bank_a: the latest booking date seen, less an overlap for late
/// bookings, and the latest position snapshot held (a position history asks only for later
/// days). File-based banks: the last file fetched.
fn next_cursor(
    before: &serde_json::Value,
    batch: &Batch,
    files_after: Option<String>,
) -> serde_json::Value {
    let mut cursor = before.clone();
    if !cursor.is_object() {
        cursor = json!({});
    }
    if let Some(file) = files_after {
        cursor["files_after"] = json!(file);
    }
    if let Some(d) = batch
        .transactions
        .iter()
        .filter(|t| t.provenance.format == SourceFormat::BankAJson)
        .map(|t| t.booking_date)
        .max()
    {
        let from = d - chrono::Days::new(CURSOR_OVERLAP_DAYS);
        let from = cursor_date(before).map_or(from, |b| b.max(from));
        cursor["transactions_from"] = json!(from.to_string());
    }
    if let Some(d) = batch
        .positions
        .iter()
        .filter(|p| p.provenance.format == SourceFormat::BankAJson)
        .map(|p| p.as_of)
        .max()
    {
        let through = cursor_day(before, "positions_through").map_or(d, |b| b.max(d));
        cursor["positions_through"] = json!(through.to_string());
    }
    cursor
}

/// Parse warnings a run keeps with its counts, for support to read through the jobs API.
const WARNING_SAMPLES: usize = 20;

/// The first [`WARNING_SAMPLES`] parse warnings, each with its document, line and field:
/// what support reads to see why a record looks as it does (the count has them all).
fn warning_samples(warnings: &[eam_normalizer::model::ParseWarning]) -> serde_json::Value {
    warnings
        .iter()
        .take(WARNING_SAMPLES)
        .map(|w| {
            json!({
                "document": w.document,
                "line": w.line,
                "field": w.field,
                "message": w.message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_the_first_twenty_warnings_with_their_place() {
        let warnings: Vec<eam_normalizer::model::ParseWarning> = (1..=25)
            .map(|n| eam_normalizer::model::ParseWarning {
                document: format!("statement-{n}.sta"),
                line: (n % 2 == 0).then_some(n),
                field: (n % 3 == 0).then(|| ":61:".to_owned()),
                message: format!("value date 30 February read as the 29th ({n})"),
            })
            .collect();
        let samples = warning_samples(&warnings);
        let samples = samples.as_array().unwrap();
        assert_eq!(samples.len(), 20);
        assert_eq!(
            samples[0],
            json!({"document": "statement-1.sta", "line": null, "field": null,
                "message": "value date 30 February read as the 29th (1)"})
        );
        assert_eq!(
            samples[5],
            json!({"document": "statement-6.sta", "line": 6, "field": ":61:",
                "message": "value date 30 February read as the 29th (6)"})
        );
        assert_eq!(samples[19]["document"], "statement-20.sta");
        assert_eq!(warning_samples(&[]), json!([]));
    }

    #[test]
    fn retry_delays_double_with_jitter_and_stay_under_the_cap() {
        let policy = SyncPolicy {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(10),
            ..SyncPolicy::default()
        };
        for _ in 0..100 {
            let first = retry_delay(&policy, 1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let third = retry_delay(&policy, 3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
            assert!(retry_delay(&policy, 30) <= Duration::from_secs(10));
        }
    }
}
