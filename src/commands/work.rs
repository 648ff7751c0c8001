//! `eam work`: a worker process.

use anyhow::Context as _;

use eam_config::Settings;
use eam_store::resources::Resources;
use eam_worker::application::WorkerApp;

#[derive(clap::Args)]
pub struct WorkArgs {
    /// Jobs run at once (default: worker.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

pub async fn run(args: WorkArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    let metrics = eam_metrics::Metrics::new();
    let resources = Resources::open(&settings).await?;
    let mut worker = WorkerApp::build(&settings, &resources, metrics.clone()).await?;
    if let Some(c) = args.concurrency {
        worker.options.concurrency = c;
    }
    tracing::info!(concurrency = worker.options.concurrency, queue = %settings.redis.queue,
        worker_id = %worker.cx.worker_id, "worker started");
    // One shutdown signal for the queue worker, the schedule tick and the metrics listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let listener = metrics_listener(&settings, metrics, stopped.clone()).await?;
    worker.run(stopped).await?;
    if let Some(listener) = listener {
        let _ = listener.await;
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// Serves `/metrics` and `/health` on `worker.metrics_bind` until `stopped` (none when the
/// setting is empty). A taken port fails the start: a worker nobody can see is not started
/// quietly.
async fn metrics_listener(
    settings: &Settings,
    metrics: eam_metrics::Metrics,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let bind = settings.worker.metrics_bind.trim();
    if bind.is_empty() {
        return Ok(None);
    }
    let server = eam_api::Server::bind(bind).await.with_context(|| {
        format!(
            "binding the worker's metrics listener on {bind} (worker.metrics_bind from {}; empty disables it)",
            settings.origin("worker.metrics_bind")
        )
    })?;
    tracing::info!(addr = %server.local_addr(), "worker metrics listening");
    Ok(Some(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = server
            .run_until(eam_api::metrics::worker_app(metrics), shutdown)
            .await
        {
            tracing::warn!(error = %e, "the worker's metrics listener stopped");
        }
    })))
}
