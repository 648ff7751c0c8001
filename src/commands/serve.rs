//! `eam serve`: the HTTP API.

use std::sync::Arc;

use eam_api::{ApiState, Server};
use eam_config::Settings;

pub async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let state = build_state(&settings).await?;
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

/// The API's state from settings: store (app role), queue producer, verifier, local issuer.
pub async fn build_state(settings: &Settings) -> anyhow::Result<ApiState> {
    let store = super::connect_store(settings).await?;
    let queue =
        eam_worker::queue::SyncQueue::connect(settings.redis.url.expose(), &settings.redis.queue)
            .await?;
    let local_issuer = if settings.auth.local_issuer_dir.is_empty() {
        None
    } else {
        Some(Arc::new(eam_auth::LocalIssuer::load_or_create(
            std::path::Path::new(&settings.auth.local_issuer_dir),
            &settings.auth.issuer,
            &settings.auth.audience,
        )?))
    };
    Ok(ApiState {
        store,
        queue,
        verifier: Arc::new(eam_api::verifier(settings)),
        local_issuer,
    })
}
