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
    // One shutdown for the API and, when apart, its metrics listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let metrics_bind = settings.api.metrics_bind.trim();
    if !metrics_bind.is_empty() {
        let listener = Server::bind(metrics_bind).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {metrics_bind} (api.metrics_bind from {}): {e}",
                settings.origin("api.metrics_bind")
            )
        })?;
        tracing::info!(addr = %listener.local_addr(), "API metrics listening");
        let endpoint = app.metrics_endpoint();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            if let Err(e) = listener.run_until(endpoint, until(stopped)).await {
                tracing::warn!(error = %e, "the API's metrics listener stopped");
            }
        });
    }
    app.serve(server, &settings.api.public_url, until(stopped))
        .await?;
    Ok(())
}
