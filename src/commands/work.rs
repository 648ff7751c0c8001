//! `eam work`: a worker process.

use std::time::Duration;

use eam_config::Settings;
use eam_worker::SyncContext;

#[derive(clap::Args)]
pub struct WorkArgs {
    /// Jobs run at once (default: worker.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

pub async fn run(args: WorkArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let cx = context(&settings).await?;
    let queue =
        eam_worker::queue::SyncQueue::connect(settings.redis.url.expose(), &settings.redis.queue)
            .await?;
    let concurrency = args.concurrency.unwrap_or(settings.worker.concurrency);
    tracing::info!(concurrency, queue = %settings.redis.queue, "worker started");
    eam_worker::queue::run_worker(
        queue,
        cx,
        concurrency,
        Duration::from_millis(settings.worker.poll_interval_ms),
        super::shutdown_signal(),
    )
    .await?;
    tracing::info!("worker stopped");
    Ok(())
}

/// The sync context from settings.
pub async fn context(settings: &Settings) -> anyhow::Result<SyncContext> {
    Ok(SyncContext {
        store: super::connect_store(settings).await?,
        bank_timeout: Duration::from_secs(settings.worker.bank_timeout_secs),
        max_attempts: settings.worker.max_attempts,
    })
}
