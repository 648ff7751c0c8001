//! Shared state of the API: the store, the queue producer and the token verifier.

use std::sync::Arc;

use eam_auth::{LocalIssuer, Verifier};
use eam_queue::SyncQueue;
use eam_store::Store;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub queue: SyncQueue,
    pub verifier: Arc<Verifier>,
    /// The development issuer, whose JWKS the API serves when configured.
    pub local_issuer: Option<Arc<LocalIssuer>>,
    /// Rate limits, the users cache, refused-token accounting.
    pub security: Arc<crate::security::Security>,
    /// The claim naming the tenant in tokens (to attribute refused tokens).
    pub tenant_claim: String,
    /// Resolves secret references (to read client certificates' expiry; values never leave).
    pub secrets: eam_config::SecretProvider,
    /// The raw document archive the worker fills.
    pub archive: eam_store::archive::Archive,
    /// A client certificate expiring within this many days is at risk.
    pub certificate_warning_days: u32,
    /// The process's metrics (shared with its worker, if it runs one).
    pub metrics: eam_metrics::Metrics,
    /// Portfolio pages already answered, until their tenant's data changes.
    pub read_cache: Arc<crate::read_cache::ReadCache>,
    /// Which addresses a bank URL may reach (checked when a URL is accepted).
    pub egress: eam_config::egress::EgressPolicy,
    /// A rate older than this many business days is flagged stale.
    pub fx_stale_after: u32,
    /// What sensitive actions ask of a token.
    pub step_up: StepUp,
    /// How long a four-eyes request waits for its approval.
    pub approval_expiry: chrono::Duration,
    /// Browser origins allowed to call the API (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// The proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<crate::request::TrustedProxies>,
    /// `/metrics` is served on a listener of its own, not on the API's.
    pub metrics_apart: bool,
}

/// Step-up authentication (RFC 9470) for sensitive actions: a second factor at most
/// `max_age_secs` ago, stated by `amr` holding `mfa` or by `acr` being one of `acr_values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    pub max_age_secs: i64,
    pub acr_values: Vec<String>,
}

impl Default for StepUp {
    fn default() -> Self {
        StepUp {
            max_age_secs: 900,
            acr_values: Vec::new(),
        }
    }
}
