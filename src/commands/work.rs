//! `eam work`: a worker process.

use std::time::Duration;

use anyhow::Context as _;

use eam_config::Settings;
use eam_connectors::{BreakerSettings, Breakers, RetryPolicy};
use eam_worker::tick::TickSettings;
use eam_worker::{CustodianLimit, DispatchSettings, SyncContext, SyncPolicy, WorkerOptions};

#[derive(clap::Args)]
pub struct WorkArgs {
    /// Jobs run at once (default: worker.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

pub async fn run(args: WorkArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let metrics = eam_metrics::Metrics::new();
    let cx = context(&settings).await?.with_metrics(metrics.clone());
    let queue =
        eam_queue::SyncQueue::connect(settings.redis.url.expose(), &settings.redis.queue).await?;
    let mut options = worker_options(&settings);
    if let Some(c) = args.concurrency {
        options.concurrency = c;
    }
    tracing::info!(concurrency = options.concurrency, queue = %settings.redis.queue,
        worker_id = %cx.worker_id, "worker started");
    // One shutdown signal for the queue worker and the schedule ticker.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticker = settings.scheduler.enabled.then(|| {
        tokio::spawn(eam_worker::tick::run_ticker(
            cx.store.clone(),
            tick_settings(&settings),
            stopped.clone(),
        ))
    });
    tokio::spawn(async move {
        super::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let listener = metrics_listener(&settings, metrics, stopped.clone()).await?;
    let mut worker_stopped = stopped;
    let shutdown = async move {
        let _ = worker_stopped.wait_for(|s| *s).await;
    };
    eam_worker::queue::run_worker(queue, cx, options, shutdown).await?;
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
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
        format!("binding the worker's metrics listener on {bind} (worker.metrics_bind; empty disables it)")
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

/// The sync context from settings: the store as the app role, the policy, the breakers, the
/// secret provider and the document archive.
pub async fn context(settings: &Settings) -> anyhow::Result<SyncContext> {
    let w = &settings.worker;
    let policy = SyncPolicy {
        bank_timeout: Duration::from_secs(w.bank_timeout_secs),
        max_attempts: w.max_attempts,
        request_retry: RetryPolicy {
            max_retries: w.request_retries,
            ..RetryPolicy::default()
        },
        retry_base: Duration::from_millis(w.retry_base_ms),
        retry_max: Duration::from_secs(w.retry_max_secs),
        lease: Duration::from_secs(w.lease_secs),
        pause_after_failures: w.pause_after_failures,
        custodian_limit: (settings.scheduler.custodian_limit > 0).then(|| CustodianLimit {
            max_running: settings.scheduler.custodian_limit,
            recheck: Duration::from_millis(settings.scheduler.custodian_recheck_ms),
        }),
        egress: eam_config::egress::EgressPolicy::from_settings(&settings.egress),
    };
    let breakers = Breakers::new(BreakerSettings {
        failures_to_open: w.breaker_failures,
        min_success_rate: f64::from(w.breaker_min_success_percent) / 100.0,
        rate_window: Duration::from_secs(w.breaker_window_secs),
        min_requests: w.breaker_min_requests,
        cooldown: Duration::from_secs(w.breaker_cooldown_secs),
    });
    Ok(SyncContext::new(
        super::connect_store(settings).await?,
        policy,
        breakers,
        super::secret_provider(settings),
        super::open_archive(settings)?,
    ))
}

/// How this process consumes and dispatches, from settings.
pub fn worker_options(settings: &Settings) -> WorkerOptions {
    let w = &settings.worker;
    WorkerOptions {
        concurrency: w.concurrency,
        poll_interval: Duration::from_millis(w.poll_interval_ms),
        grace: Duration::from_secs(w.shutdown_grace_secs),
        dispatch: DispatchSettings {
            interval: Duration::from_millis(w.dispatch_interval_ms),
            stale_after: Duration::from_secs(w.stale_after_secs),
            ..DispatchSettings::default()
        },
    }
}

/// The schedule tick's settings.
pub fn tick_settings(settings: &Settings) -> TickSettings {
    let s = &settings.scheduler;
    TickSettings {
        interval: Duration::from_secs(s.tick_interval_secs),
        catch_up: Duration::from_secs(s.catch_up_hours.saturating_mul(3600)),
        spread: Duration::from_secs(s.spread_secs),
        ..TickSettings::default()
    }
}
