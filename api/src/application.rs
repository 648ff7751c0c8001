//! One assembly of the API: `eam serve` and `eam demo` build it from settings, the e2e kit from
//! its own configuration, and both end in [`Application::assemble`], the one place an
//! [`ApiState`] is put together.

use std::sync::Arc;
use std::time::Duration;

use eam_auth::{LocalIssuer, Verifier};
use eam_config::Settings;
use eam_config::egress::EgressPolicy;
use eam_queue::SyncQueue;
use eam_store::resources::Resources;

use crate::read_cache::{ReadCache, ReadCacheSettings};
use crate::security::{Security, SecuritySettings};
use crate::{ApiState, Server};

/// Why the API could not be built (the message names what to look at).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// How the API behaves: everything it takes from settings beside its resources.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub security: SecuritySettings,
    pub read_cache: ReadCacheSettings,
    /// The claim naming the tenant in tokens.
    pub tenant_claim: String,
    /// A client certificate expiring within this many days is at risk.
    pub certificate_warning_days: u32,
    /// Where a connection's own bank URL may point.
    pub egress: EgressPolicy,
    /// A rate older than this many business days is flagged stale.
    pub fx_stale_after: u32,
    /// What sensitive actions ask of a token.
    pub step_up: crate::state::StepUp,
    /// How long a four-eyes request waits for its approval.
    pub approval_expiry: chrono::Duration,
    /// Browser origins allowed to call the API (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// The proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::request::TrustedProxies,
    /// `/metrics` on a listener of its own ([`Application::serve_metrics`]), not the API's.
    pub metrics_apart: bool,
}

impl ApiConfig {
    pub fn from_settings(settings: &Settings) -> ApiConfig {
        let limits = &settings.rate_limit;
        ApiConfig {
            security: SecuritySettings {
                tenant_per_second: limits.tenant_per_second,
                tenant_burst: limits.tenant_burst,
                user_per_second: limits.user_per_second,
                user_burst: limits.user_burst,
                refused_per_second: limits.refused_per_second,
                refused_burst: limits.refused_burst,
                user_cache: Duration::from_secs(settings.auth.user_cache_secs),
            },
            read_cache: ReadCacheSettings {
                max_bytes: usize::try_from(settings.api.read_cache_mib.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
                ttl: Duration::from_secs(settings.api.read_cache_secs),
            },
            tenant_claim: settings.auth.tenant_claim.clone(),
            certificate_warning_days: settings.certificates.warning_days,
            egress: EgressPolicy::from_settings(&settings.egress),
            fx_stale_after: settings.market_data.stale_after_business_days,
            step_up: crate::state::StepUp {
                max_age_secs: i64::try_from(settings.auth.mfa_max_age_secs).unwrap_or(i64::MAX),
                acr_values: settings.auth.mfa_acr_values.clone(),
            },
            approval_expiry: chrono::Duration::hours(i64::from(
                settings.auth.approval_expiry_hours,
            )),
            cors_origins: settings.api.cors_origins.clone(),
            // Checked when the settings load (`Settings::check`).
            trusted_proxies: crate::request::TrustedProxies::parse(&settings.api.trusted_proxies)
                .unwrap_or_default(),
            metrics_apart: !settings.api.metrics_bind.trim().is_empty(),
        }
    }
}

/// Who signs and who checks tokens.
pub struct Identity {
    pub verifier: Verifier,
    /// The development issuer, whose JWKS the API serves.
    pub local_issuer: Option<Arc<LocalIssuer>>,
}

impl Identity {
    /// From settings: the local issuer when `auth.local_issuer_dir` is set; tokens checked
    /// against `auth.jwks_url`, or straight against the local issuer's keys when that is
    /// empty (the same keys the API would serve itself at `/auth/jwks.json`).
    pub fn from_settings(settings: &Settings) -> Result<Identity, BuildError> {
        let a = &settings.auth;
        let local_issuer = if a.local_issuer_dir.is_empty() {
            None
        } else {
            Some(Arc::new(LocalIssuer::load_or_create(
                std::path::Path::new(&a.local_issuer_dir),
                &a.issuer,
                &a.audience,
            )?))
        };
        let config = crate::verifier_config(settings);
        let verifier = match &local_issuer {
            Some(issuer) if a.jwks_url.is_empty() => Verifier::with_keys(config, issuer.jwks())?,
            _ => Verifier::new(config),
        };
        Ok(Identity {
            verifier,
            local_issuer,
        })
    }
}

/// The API of one process, ready to serve.
pub struct Application {
    state: ApiState,
}

impl Application {
    /// The API the settings describe over the process's resources, counting into `metrics`.
    pub async fn build(
        settings: &Settings,
        resources: &Resources,
        metrics: eam_metrics::Metrics,
    ) -> Result<Application, BuildError> {
        let queue = SyncQueue::connect(settings.redis.url.expose(), &settings.redis.queue)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", settings.describe_redis()))?;
        Ok(Application::assemble(
            resources,
            queue,
            Identity::from_settings(settings)?,
            ApiConfig::from_settings(settings),
            metrics,
        ))
    }

    /// Puts the state together (and starts the read cache's change feed).
    pub fn assemble(
        resources: &Resources,
        queue: SyncQueue,
        identity: Identity,
        config: ApiConfig,
        metrics: eam_metrics::Metrics,
    ) -> Application {
        let read_cache = ReadCache::start(
            &resources.store,
            config.read_cache,
            metrics.read_cache_gauges(),
        );
        Application {
            state: ApiState {
                store: resources.store.clone(),
                queue,
                verifier: Arc::new(identity.verifier),
                local_issuer: identity.local_issuer,
                security: Arc::new(Security::new(config.security)),
                tenant_claim: config.tenant_claim,
                secrets: resources.secrets.clone(),
                archive: resources.archive.clone(),
                certificate_warning_days: config.certificate_warning_days,
                metrics,
                read_cache: Arc::new(read_cache),
                egress: config.egress,
                fx_stale_after: config.fx_stale_after,
                step_up: config.step_up,
                approval_expiry: config.approval_expiry,
                cors_origins: config.cors_origins,
                trusted_proxies: std::sync::Arc::new(config.trusted_proxies),
                metrics_apart: config.metrics_apart,
            },
        }
    }

    /// `/metrics` and `/health`, for a listener of their own (`api.metrics_bind`).
    pub fn metrics_endpoint(&self) -> impl poem::Endpoint + 'static {
        poem::Route::new()
            .at("/metrics", crate::metrics::endpoint(&self.state))
            .at("/health", poem::get(poem::endpoint::make_sync(|_| "ok")))
    }

    pub fn state(&self) -> &ApiState {
        &self.state
    }

    /// Serves `/api/v1` (and the probes, metrics, JWKS) on `server` until `shutdown`;
    /// `public_url` is where clients reach it (links, the OpenAPI document's server).
    pub async fn serve(
        self,
        server: Server,
        public_url: &str,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server
            .run_until(crate::app(self.state, public_url), shutdown)
            .await
    }
}
