//! `eam serve`: the HTTP API.

use eam_api::{Application, Server};
use eam_config::Settings;
use eam_store::resources::Resources;

pub async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    let resources = Resources::open(&settings).await?;
    let app = Application::build(&settings, &resources, eam_metrics::Metrics::new())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let server = Server::bind(&settings.api.bind).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (api.bind from {}): {e}",
            settings.api.bind,
            settings.origin("api.bind")
        )
    })?;
    tracing::info!(addr = %server.local_addr(), "API listening");
    app.serve(server, &settings.api.public_url, super::shutdown_signal())
        .await?;
    Ok(())
}
