//! `eam serve`: the HTTP API.

use std::sync::Arc;

use eam_api::{ApiState, Server};
use eam_config::Settings;

pub async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let state = build_state(&settings, eam_metrics::Metrics::new()).await?;
    let server = Server::bind(&settings.api.bind).await?;
    tracing::info!(addr = %server.local_addr(), "API listening");
    server
        .run_until(
            eam_api::app(state, &settings.api.public_url),
            super::shutdown_signal(),
        )
        .await?;
    Ok(())
}

/// The API's state from settings: store (app role), queue producer, verifier, local issuer;
/// counting into `metrics`.
pub async fn build_state(
    settings: &Settings,
    metrics: eam_metrics::Metrics,
) -> anyhow::Result<ApiState> {
    let store = super::connect_store(settings).await?;
    let queue =
        eam_queue::SyncQueue::connect(settings.redis.url.expose(), &settings.redis.queue).await?;
    let local_issuer = if settings.auth.local_issuer_dir.is_empty() {
        None
    } else {
        Some(Arc::new(eam_auth::LocalIssuer::load_or_create(
            std::path::Path::new(&settings.auth.local_issuer_dir),
            &settings.auth.issuer,
            &settings.auth.audience,
        )?))
    };
    let limits = &settings.rate_limit;
    let security = eam_api::security::Security::new(eam_api::security::SecuritySettings {
        tenant_per_second: limits.tenant_per_second,
        tenant_burst: limits.tenant_burst,
        user_per_second: limits.user_per_second,
        user_burst: limits.user_burst,
        user_cache: std::time::Duration::from_secs(settings.auth.user_cache_secs),
    });
    let read_cache = eam_api::read_cache::ReadCache::start(
        &store,
        eam_api::read_cache::ReadCacheSettings {
            max_bytes: usize::try_from(settings.api.read_cache_mib.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            ttl: std::time::Duration::from_secs(settings.api.read_cache_secs),
        },
        metrics.read_cache_gauges(),
    );
    Ok(ApiState {
        read_cache: Arc::new(read_cache),
        store,
        queue,
        verifier: Arc::new(eam_api::verifier(settings)),
        local_issuer,
        security: Arc::new(security),
        tenant_claim: settings.auth.tenant_claim.clone(),
        secrets: super::secret_provider(settings),
        archive: super::open_archive(settings)?,
        certificate_warning_days: settings.certificates.warning_days,
        metrics,
        egress: eam_config::egress::EgressPolicy::from_settings(&settings.egress),
    })
}
