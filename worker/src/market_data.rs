//! Market data: the ECB's euro reference rates fetched (platform identity, egress rule,
//! retries, breaker), archived as received under the platform's namespace of the archive (the
//! nil tenant), read, and loaded idempotently into `fx_rates`.
//!
//! [`MarketData::sync`] is the load itself (`eam fx-rates sync` runs it inline). As a job,
//! [`run_attempt`] runs one attempt of a `market_data_runs` row delivered by the queue, the way
//! the pipeline runs a sync: `begin` (queued -> running under a lease the heartbeat renews,
//! only when due; the file decided then if the run names none: the whole history while no ECB
//! rate is stored, else the daily file) -> fetch, archive, load -> the run `succeeded` with
//! the document's SHA-256 and the counts, or, for a transient error, `queued` again with
//! back-off until `max_attempts`, and `failed` with the classified error otherwise. Requests
//! retry inside the attempt and the endpoint's breaker is the worker's, as for banks. A worker
//! that dies mid-run stops renewing its lease and the dispatcher gives the run to another.

use std::sync::Arc;
use std::time::Duration;

use eam_config::{MarketDataSettings, SecretProvider};
use eam_connectors::market_data::{EcbClient, EcbConfig, EcbFile};
use eam_connectors::{Breakers, RetryPolicy, TlsIdentity};
use eam_model::{ErrorClass, RunId, RunStatus};
use eam_queue::MarketDataTask;
use eam_store::archive::Archive;
use eam_store::fx_rates::{self, Loaded};
use eam_store::market_data_runs::{self, RatesFile, RatesLoaded, Transition};
use eam_store::runs::Lease;
use eam_store::{Store, StoreError, TenantId};
use tokio::sync::watch;
use tracing::Instrument;

use crate::error::SyncError;
use crate::pipeline::{AfterFailure, AttemptOutcome, SyncContext, keep_lease};

/// The archive namespace of platform documents (no tenant owns them).
pub const PLATFORM: TenantId = TenantId(uuid::Uuid::nil());

/// What one market-data sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct RatesSynced {
    pub document: String,
    pub sha256: String,
    pub rates: usize,
    pub loaded: Loaded,
    /// Rates of codes ISO 4217 does not know, left out.
    pub warnings: Vec<String>,
}

/// Where and how to fetch.
pub struct MarketData<'a> {
    pub settings: &'a MarketDataSettings,
    pub secrets: &'a SecretProvider,
    pub breakers: &'a Breakers,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub egress: eam_config::egress::EgressPolicy,
}

impl MarketData<'_> {
    /// A platform secret, or nothing for an empty reference.
    async fn platform(&self, reference: &str) -> Result<Vec<u8>, SyncError> {
        if reference.trim().is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.secrets.resolve_platform(reference).await?)
    }

    /// Fetches `file`, archives it, and loads its rates.
    pub async fn sync(
        &self,
        store: &Store,
        archive: &Archive,
        file: EcbFile,
    ) -> Result<RatesSynced, SyncError> {
        let s = self.settings;
        let tls = TlsIdentity {
            client_cert_pem: self.platform(&s.client_cert_ref).await?,
            client_key_pem: self.platform(&s.client_key_ref).await?,
            ca_pem: self.platform(&s.ca_cert_ref).await?,
        };
        let client = EcbClient::new(EcbConfig {
            base_url: s.ecb_url.clone(),
            tls,
            timeout: self.timeout,
            retry: self.retry.clone(),
            breaker: Some(self.breakers.for_url(&s.ecb_url)),
            egress: self.egress,
        })?;
        let document = client.fetch(file).await?;
        let name = document.name();
        let stored = archive.put(PLATFORM, document.body.clone()).await?;
        let parsed = eam_normalizer::ecb::parse(&name, &document.body)
            .map_err(|e| SyncError::new(ErrorClass::Data, e.to_string()))?;
        let loaded = fx_rates::load(store, &parsed.rates, &stored.sha256).await?;
        tracing::info!(document = %name, sha256 = %stored.sha256, rates = parsed.rates.len(),
            inserted = loaded.inserted, updated = loaded.updated, "reference rates loaded");
        Ok(RatesSynced {
            document: name,
            sha256: stored.sha256,
            rates: parsed.rates.len(),
            loaded,
            warnings: parsed.warnings,
        })
    }
}

/// What market-data jobs share in one worker process: the sync context (store, policy,
/// breakers, secrets, archive, worker id) and the feed's settings; cheap to clone.
#[derive(Clone)]
pub struct MarketDataJobs {
    cx: SyncContext,
    settings: Arc<MarketDataSettings>,
}

impl MarketDataJobs {
    pub fn new(cx: SyncContext, settings: MarketDataSettings) -> Self {
        MarketDataJobs {
            cx,
            settings: Arc::new(settings),
        }
    }

    fn market(&self) -> MarketData<'_> {
        let policy = &self.cx.policy;
        MarketData {
            settings: &self.settings,
            secrets: &self.cx.secrets,
            breakers: &self.cx.breakers,
            timeout: policy.bank_timeout,
            retry: policy.request_retry.clone(),
            egress: policy.egress,
        }
    }

    fn lease(&self) -> Lease {
        Lease {
            owner: self.cx.worker_id.clone(),
            ttl: self.cx.policy.lease,
        }
    }
}

fn ecb_file(file: RatesFile) -> EcbFile {
    match file {
        RatesFile::Daily => EcbFile::Daily,
        RatesFile::History => EcbFile::History,
    }
}

/// Runs one attempt of a market-data run (see the module docs). `delivery` is the transport's
/// count, for logs.
pub async fn run_attempt(
    jobs: &MarketDataJobs,
    task: MarketDataTask,
    delivery: u32,
) -> AttemptOutcome {
    let span = tracing::info_span!("market_data", run_id = %task.run_id, delivery);
    let outcome = attempt_steps(jobs, task.run_id)
        .instrument(span.clone())
        .await;
    span.in_scope(|| match &outcome {
        AttemptOutcome::Finished(status) => {
            tracing::info!(status = status.as_str(), "market-data attempt finished");
        }
        AttemptOutcome::Abandoned => tracing::info!("market-data attempt abandoned"),
        AttemptOutcome::Retry(_) | AttemptOutcome::Skipped => {}
    });
    outcome
}

async fn attempt_steps(jobs: &MarketDataJobs, run: RunId) -> AttemptOutcome {
    let store = &jobs.cx.store;
    let lease = jobs.lease();
    let (attempt, file) = match begin(store, run, &lease).await {
        Ok(Some(started)) => started,
        Ok(None) => return AttemptOutcome::Skipped,
        Err(e) => return AttemptOutcome::Retry(format!("could not start the run: {e}")),
    };
    tracing::info!(attempt, file = file.as_str(), "market-data run started");
    let (lost_tx, mut lost_rx) = watch::channel(false);
    let (renewing, held) = (store.clone(), lease.clone());
    let heartbeat = tokio::spawn(
        keep_lease(lease.ttl, "run", lost_tx, move || {
            let (store, lease) = (renewing.clone(), held.clone());
            async move { market_data_runs::renew_lease(&store, run, &lease).await }
        })
        .in_current_span(),
    );
    let market = jobs.market();
    let result = tokio::select! {
        result = market.sync(store, &jobs.cx.archive, ecb_file(file)) => Some(result),
        _ = lost_rx.wait_for(|lost| *lost) => None,
    };
    heartbeat.abort();
    let t = match result {
        None => {
            tracing::warn!("the run was presumed dead and given to another worker; stopped");
            return AttemptOutcome::Abandoned;
        }
        Some(Ok(synced)) => Transition {
            loaded: Some(RatesLoaded {
                document: synced.document,
                sha256: synced.sha256,
                rates: synced.rates as u64,
                inserted: synced.loaded.inserted,
                updated: synced.loaded.updated,
                unchanged: synced.loaded.unchanged,
                warnings: synced.warnings,
            }),
            ..Transition::to(RunStatus::Succeeded)
        },
        Some(Err(e)) => {
            tracing::warn!(class = e.class.as_str(), error = %e.message, attempt, "market-data attempt failed");
            failure(&jobs.cx.policy, &e, attempt)
        }
    };
    let t = Transition {
        only_if_lease_owner: Some(lease.owner.clone()),
        ..t
    };
    match market_data_runs::transition(store, run, t).await {
        Ok(finished) => AttemptOutcome::Finished(
            RunStatus::parse(&finished.status).unwrap_or(RunStatus::Failed),
        ),
        Err(StoreError::InvalidTransition { .. }) => AttemptOutcome::Abandoned,
        Err(e) => AttemptOutcome::Retry(format!("could not record the run's end: {e}")),
    }
}

/// What a failed attempt becomes (see [`AfterFailure`]: the feed's Retry-After honoured).
fn failure(policy: &crate::SyncPolicy, e: &SyncError, attempt: u32) -> Transition {
    let after = AfterFailure::of(policy, e, attempt);
    Transition {
        error: Some(after.error),
        next_attempt_at: after.next_attempt_at,
        ..Transition::to(after.status)
    }
}

/// Moves the run to `running` under this worker's lease, deciding its file if it names none;
/// `None` when the run is not queued and due, or unknown. Returns the attempt number and file.
async fn begin(
    store: &Store,
    run: RunId,
    lease: &Lease,
) -> Result<Option<(u32, RatesFile)>, StoreError> {
    let current = match market_data_runs::get(store, run).await {
        Ok(current) => current,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = match current.file.as_deref().and_then(RatesFile::parse) {
        Some(file) => file,
        None if fx_rates::has_ecb_rates(store).await? => RatesFile::Daily,
        None => RatesFile::History,
    };
    let t = Transition {
        new_attempt: true,
        file: Some(file),
        lease: Some(lease.clone()),
        only_if_due: true,
        ..Transition::to(RunStatus::Running)
    };
    match market_data_runs::transition(store, run, t).await {
        Ok(started) => {
            let file = started
                .file
                .as_deref()
                .and_then(RatesFile::parse)
                .unwrap_or(file);
            Ok(Some((
                u32::try_from(started.attempts).unwrap_or(u32::MAX),
                file,
            )))
        }
        Err(StoreError::InvalidTransition { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

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
        let e = SyncError::new(ErrorClass::Transient, "503 from the feed");
        let before = Utc::now();
        let again = failure(&policy(), &e, 1);
        assert_eq!(again.to, RunStatus::Queued);
        let at = again.next_attempt_at.expect("a retry time");
        assert!(at >= before + chrono::Duration::milliseconds(500), "{at}");
        assert_eq!(
            again.error.as_ref().map(|e| e.class),
            Some(ErrorClass::Transient)
        );
        let last = failure(&policy(), &e, 3);
        assert_eq!((last.to, last.next_attempt_at), (RunStatus::Failed, None));
    }

    #[test]
    fn a_retry_waits_at_least_as_long_as_the_feed_asked() {
        let e = SyncError {
            retry_after: Some(Duration::from_secs(120)),
            ..SyncError::new(ErrorClass::Transient, "429")
        };
        let before = Utc::now();
        let again = failure(&policy(), &e, 1);
        assert!(again.next_attempt_at.unwrap() >= before + chrono::Duration::seconds(120));
    }

    #[test]
    fn auth_and_data_errors_fail_at_once() {
        for class in [ErrorClass::Auth, ErrorClass::Data, ErrorClass::Internal] {
            let t = failure(&policy(), &SyncError::new(class, "no"), 1);
            assert_eq!(t.to, RunStatus::Failed);
            assert_eq!(t.error.map(|e| e.class), Some(class));
        }
    }
}
