//! The sync pipeline: one bank connection, one run, as a sequence of named steps.
//!
//! `begin` (run -> running) -> `fetch` (raw documents from the bank) -> `normalize` (pure parse)
//! -> `load` (records + cursor + run status in ONE database transaction) . A failure before
//! `load` commits leaves the data exactly as it was; the run records the classified error.
//! Transient errors are retried by the queue up to the configured attempts; auth, data and
//! internal errors end the run `failed` at once.

use std::time::Duration;

use chrono::NaiveDate;
use eam_connectors::bank_a::{BankAClient, BankAConfig};
use eam_connectors::{DocumentKind, ErrorClass, RawDocument, TlsIdentity};
use eam_normalizer::bank_a;
use eam_normalizer::model::Batch;
use eam_store::connections::{self, Connection};
use eam_store::runs::{self, AttemptError, RunStatus, Transition};
use eam_store::{ConnectionId, RunId, Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::error::SyncError;

/// What the queue carries: which run of which connection of which tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTask {
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

/// Shared state of the sync steps.
#[derive(Clone)]
pub struct SyncContext {
    pub store: Store,
    pub bank_timeout: Duration,
    pub max_attempts: u32,
}

/// How an attempt ended, for the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The run reached a terminal status (succeeded, failed, dead or cancelled).
    Finished(RunStatus),
    /// A transient failure: the queue should try again.
    Retry(String),
    /// The run was already terminal (a duplicate delivery): nothing done.
    Skipped,
}

/// Overlap when re-fetching transactions: late bookings within this window are picked up.
const CURSOR_OVERLAP_DAYS: u64 = 7;

/// Runs one attempt of a sync. `attempt` is the transport's delivery count (from 1); the
/// attempt number that decides `dead` is the one PostgreSQL counts, which survives crashes.
pub async fn run_attempt(cx: &SyncContext, task: SyncTask, attempt: u32) -> AttemptOutcome {
    let span = tracing::info_span!("sync", run_id = %task.run_id, tenant_id = %task.tenant_id,
        connection_id = %task.connection_id, delivery = attempt);
    attempt_steps(cx, task).instrument(span).await
}

async fn attempt_steps(cx: &SyncContext, task: SyncTask) -> AttemptOutcome {
    let attempt = match begin(cx, task).await {
        Ok(Some(attempt)) => attempt,
        Ok(None) => return AttemptOutcome::Skipped,
        Err(e) => return AttemptOutcome::Retry(format!("could not start the run: {e}")),
    };
    match sync(cx, task).await {
        Ok(status) => AttemptOutcome::Finished(status),
        Err(e) => {
            tracing::warn!(class = e.class.as_str(), error = %e.message, attempt, "sync attempt failed");
            let retry = e.class == ErrorClass::Transient && attempt < cx.max_attempts;
            match record_failure(cx, task, &e, retry).await {
                Ok(_) if retry => AttemptOutcome::Retry(e.message),
                Ok(status) => AttemptOutcome::Finished(status),
                // The failure could not even be recorded (database down): let the queue retry.
                Err(record_err) => {
                    AttemptOutcome::Retry(format!("{e}; and recording it failed: {record_err}"))
                }
            }
        }
    }
}

/// Moves the run to `running` for a new attempt and returns the attempt number; `None` when
/// the run is already terminal (a duplicate delivery) or unknown.
async fn begin(cx: &SyncContext, task: SyncTask) -> Result<Option<u32>, StoreError> {
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    let t = Transition {
        new_attempt: true,
        ..Transition::to(RunStatus::Running)
    };
    match runs::transition(&mut tx, task.run_id, t).await {
        Ok(run) => {
            tx.commit().await?;
            Ok(Some(u32::try_from(run.attempts).unwrap_or(u32::MAX)))
        }
        Err(StoreError::InvalidTransition { .. }) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn sync(cx: &SyncContext, task: SyncTask) -> Result<RunStatus, SyncError> {
    let connection = {
        let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
        connections::get(&mut tx, task.connection_id).await?
    };
    let since = cursor_date(&connection.cursor);
    let documents = fetch(cx, &connection, since).await?;
    let batch = normalize(&connection, &documents)?;
    load(cx, task, &connection, &batch).await
}

/// Fetches the raw documents since the cursor.
async fn fetch(
    cx: &SyncContext,
    connection: &Connection,
    since: Option<NaiveDate>,
) -> Result<Vec<RawDocument>, SyncError> {
    match connection.protocol.as_str() {
        "bank_a" => {
            let client_secret =
                eam_config::secrets::resolve_text(&connection.client_secret_ref).await?;
            let tls = tls_identity(connection).await?;
            let client = BankAClient::new(BankAConfig {
                base_url: connection.base_url.clone(),
                client_id: connection.client_id.clone(),
                client_secret,
                tls,
                timeout: cx.bank_timeout,
            })?;
            Ok(client.fetch(since).await?.documents)
        }
        other => Err(SyncError::internal(format!(
            "protocol {other} is not supported yet"
        ))),
    }
}

async fn tls_identity(connection: &Connection) -> Result<TlsIdentity, SyncError> {
    async fn opt(reference: &Option<String>) -> Result<Vec<u8>, SyncError> {
        match reference {
            Some(r) => Ok(eam_config::secrets::resolve(r).await?),
            None => Ok(Vec::new()),
        }
    }
    Ok(TlsIdentity {
        client_cert_pem: opt(&connection.client_cert_ref).await?,
        client_key_pem: opt(&connection.client_key_ref).await?,
        ca_pem: opt(&connection.ca_cert_ref).await?,
    })
}

/// Parses every document; one unreadable document fails the whole sync (nothing is loaded).
fn normalize(connection: &Connection, documents: &[RawDocument]) -> Result<Batch, SyncError> {
    let mut batch = Batch::default();
    for doc in documents {
        let kind = match doc.kind {
            DocumentKind::Accounts => bank_a::DocumentKind::Accounts,
            DocumentKind::Positions => bank_a::DocumentKind::Positions,
            DocumentKind::Balances => bank_a::DocumentKind::Balances,
            DocumentKind::Transactions => bank_a::DocumentKind::Transactions,
        };
        batch.extend(bank_a::parse(
            kind,
            &connection.custodian,
            &doc.name(),
            &doc.body,
        )?);
    }
    batch.dedup_securities();
    Ok(batch)
}

/// Loads the batch, moves the cursor and finishes the run, all in one transaction.
async fn load(
    cx: &SyncContext,
    task: SyncTask,
    connection: &Connection,
    batch: &Batch,
) -> Result<RunStatus, SyncError> {
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    // One load per connection at a time: a second worker waits here rather than interleaving.
    let locked = connections::lock(&mut tx, task.connection_id).await?;
    let counts =
        eam_store::load::load_batch(&mut tx, task.connection_id, task.run_id, batch).await?;
    let cursor_after = next_cursor(&locked.cursor, batch);
    connections::set_cursor(&mut tx, task.connection_id, &cursor_after).await?;
    let counts_json =
        serde_json::to_value(&counts).map_err(|e| SyncError::internal(e.to_string()))?;
    let t = Transition {
        counts: Some(counts_json),
        cursor_before: Some(connection.cursor.clone()),
        cursor_after: Some(cursor_after),
        ..Transition::to(RunStatus::Succeeded)
    };
    match runs::transition(&mut tx, task.run_id, t).await {
        Ok(_) => {}
        // Cancelled meanwhile: roll back, nothing half-loaded.
        Err(StoreError::InvalidTransition { from, .. }) => {
            return RunStatus::parse(&from)
                .ok_or_else(|| SyncError::internal("unknown run status"));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    tracing::info!(run_id = %task.run_id, changed = counts.changed(), "sync loaded");
    Ok(RunStatus::Succeeded)
}

/// Records a failed attempt: back to `queued` for a retry, or the final failed/dead status.
async fn record_failure(
    cx: &SyncContext,
    task: SyncTask,
    e: &SyncError,
    retry: bool,
) -> Result<RunStatus, StoreError> {
    let mut tx = cx.store.tenant_tx(task.tenant_id).await?;
    let run = runs::get(&mut tx, task.run_id).await?;
    let attempt_error = AttemptError {
        attempt: run.attempts,
        at: chrono::Utc::now(),
        class: e.class.as_str().to_owned(),
        message: e.message.clone(),
    };
    let to = if retry {
        RunStatus::Queued
    } else if e.class == ErrorClass::Transient {
        RunStatus::Dead
    } else {
        RunStatus::Failed
    };
    let t = Transition {
        attempt_error: Some(attempt_error),
        error: Some((e.class.as_str().to_owned(), e.message.clone())),
        ..Transition::to(to)
    };
    let run = runs::transition(&mut tx, task.run_id, t).await?;
    tx.commit().await?;
    Ok(run.status())
}

/// The date to fetch transactions from, if the connection has synced before.
fn cursor_date(cursor: &serde_json::Value) -> Option<NaiveDate> {
    cursor
        .get("transactions_from")
        .and_then(|v| v.as_str())
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// The cursor after a batch: the latest booking date seen, less an overlap for late bookings.
fn next_cursor(before: &serde_json::Value, batch: &Batch) -> serde_json::Value {
    let latest = batch.transactions.iter().map(|t| t.booking_date).max();
    match latest {
        Some(d) => {
            let from = d - chrono::Days::new(CURSOR_OVERLAP_DAYS);
            let from = cursor_date(before).map_or(from, |b| b.max(from));
            json!({ "transactions_from": from.to_string() })
        }
        None => before.clone(),
    }
}
