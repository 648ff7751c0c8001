//! Consuming the job queues: Redis (apalis-redis 1.0) carries [`SyncTask`]s and
//! [`MarketDataTask`]s from the API and the dispatcher (the producer is the `eam-queue` crate)
//! to workers. Each kind has its own queue and its own apalis worker built by the same code
//! (generic over [`Consumed`]); what follows holds for both, with the market-data attempt
//! (`market_data::run_attempt`, one at a time per worker) in the place of the pipeline.
//!
//! Redis is only the transport. PostgreSQL (`sync_runs`) records every run, its attempts and
//! errors, and [`pipeline::run_attempt`] decides when a transient failure becomes `dead`. This
//! module delivers each task, re-delivers it after a delay when the pipeline asks for another
//! attempt, never drops one, and stops cleanly.
//!
//! # Consuming
//!
//! [`run_worker`] runs one apalis worker with these layers, outermost first:
//! `concurrency(n)` -> `parallelize(tokio::spawn)` (each sync on its own tokio task, so CPU-bound
//! parsing neither serialises syncs nor delays heartbeats) -> a trace span `sync_task` with the
//! run, tenant and connection ids -> `catch_panic`. The handler [`deliver`] maps the outcome:
//! `Finished` and `Skipped` acknowledge the task; `Retry` returns an error, and apalis-redis
//! re-schedules the task; past [`max_deliveries`] it returns `AbortError` and the task moves to the
//! queue's dead set. A panic is caught and ends in the dead set as well (no re-delivery).
//!
//! Settings that matter, each measured against Redis 7 with a scratch crate:
//!
//! - `batch_size(1)`: a worker takes a task only when it has a free slot. A larger batch parks
//!   the extra tasks in this worker's memory, hidden from other workers, and apalis sends no
//!   heartbeat while such a batch waits, so long syncs would make the worker look dead.
//! - `poll_with_interval(poll_interval)`: without it an idle worker only looks for work on its
//!   heartbeat. Measured pick-up: at most one interval (0 to 200 ms at 200 ms, 0 to 500 ms at
//!   500 ms).
//! - `lock_tasks(false)`: the lock only writes `locked_by` metadata and costs a Redis call per
//!   task; a task is owned through the worker's in-flight set either way.
//!
//! # Re-delivery, delays and the attempt cap
//!
//! Retries are not the transport's business: a transient failure is recorded in PostgreSQL as
//! `queued` with a `next_attempt_at` (jittered exponential back-off), the task is acknowledged,
//! and the dispatcher (`dispatch`) pushes a new task when the run is due. apalis' own
//! re-delivery is used only when the pipeline could not record anything (PostgreSQL
//! unreachable): apalis-redis re-schedules a failed task to `now + attempt` seconds (hard-coded
//! in its Lua; measured gaps 1, 2, 3 s), and we give up at `max_attempts + 5` deliveries with
//! `AbortError` (apalis-redis would stop at 25 regardless). The run row keeps what PostgreSQL
//! last recorded, and the dispatcher picks it up again once its lease expires or it goes stale.
//! apalis' in-process tower retry is not used: it holds the concurrency slot while it sleeps,
//! and once shutdown starts the retried call waits forever (measured: shutdown hung).
//!
//! # Shutdown and lost Redis connections
//!
//! Shutdown pauses the worker first, so it takes no new task while its in-flight tasks finish
//! (up to the grace period). Only then does it stop the worker, which flushes the final
//! acknowledgements and returns any fetched-but-unstarted task to the queue. Stopping right away
//! is not safe: apalis then stops reading its bounded internal channel of acknowledgements, and
//! with more than four tasks in flight the fifth one never finishes (measured: 8 in flight, 4
//! acknowledged, drain hung). Paused, the worker keeps heartbeating and flushing.
//!
//! apalis ends a worker on its first Redis error and drops the tasks it was running. Instead, a
//! failed worker is drained the same way (its running syncs finish; we keep its heartbeat up,
//! since apalis no longer does) and a new one starts after a back-off of 1 s doubling to 30 s.
//! Measured with a private Redis stopped for 6.5 s under a running sync: pushes failed at once
//! with an error, the sync finished, the next worker took the next task within 4 s of Redis
//! returning. The finished sync's acknowledgement could not be written (apalis cannot retry it),
//! so that task comes back after apalis' orphan timeout and the pipeline skips the finished
//! run.
//!
//! # A worker that dies mid-run
//!
//! apalis-redis 1.0 puts a dead worker's in-flight tasks back once it has missed
//! `MISSED_HEARTBEATS` heartbeats (30 s here; measured: a SIGKILLed worker's task came back
//! 7.6 s after its last heartbeat with 2 s x 3), with a live worker on the same queue. We do
//! not rely on it: the run's lease in PostgreSQL expires first (`worker.lease_secs`), and the
//! dispatcher puts the run back on the queue under a new task id. When apalis later re-delivers
//! the old task, the pipeline finds the run running elsewhere (or finished) and skips it. A
//! worker drained past its grace period hands its runs back explicitly (`pipeline::hand_back`);
//! an abandoned sync still running on its tokio task cannot commit, as it no longer holds the
//! lease.
//!
//! What apalis-redis does not do: expire anything. Task data, metadata and the done/dead sets
//! stay in Redis until vacuumed, and a stopped worker stays in `{queue}:workers` (its clean-up
//! removes the wrong member) until another worker's heartbeat sweeps it.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::layers::tracing::{DefaultOnFailure, TraceLayer};
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tracing::{Level, Span};

use crate::dispatch::DispatchSettings;
use crate::market_data::MarketDataJobs;
use crate::pipeline::{self, AttemptOutcome, SyncContext};
use crate::reports::{ReportJobs, ReportSettings};
use eam_config::MarketDataSettings;
use eam_queue::{
    HEARTBEAT_INTERVAL, Job, JobQueue, MarketDataTask, ReportTask, SyncQueue, SyncTask,
};
use eam_store::RunId;

/// How long in-flight syncs may run on after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Deliveries beyond the pipeline's `max_attempts` before a task that keeps asking for another
/// attempt is abandoned.
const REDELIVERY_HEADROOM: u32 = 5;
/// apalis-redis moves a task to its dead set after this many failed attempts, whatever we ask.
const APALIS_REDIS_ATTEMPT_LIMIT: u32 = 25;
/// Back-off between worker restarts after a Redis failure.
const RESTART_DELAY_MIN: Duration = Duration::from_secs(1);
const RESTART_DELAY_MAX: Duration = Duration::from_secs(30);
/// How often a paused worker is checked for its last in-flight task.
const DRAIN_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// How a worker process consumes and dispatches.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Syncs run at once.
    pub concurrency: usize,
    /// How often an idle worker looks for a task.
    pub poll_interval: Duration,
    /// How long in-flight syncs may run on after shutdown is requested.
    pub grace: Duration,
    pub dispatch: DispatchSettings,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            poll_interval: Duration::from_millis(300),
            grace: SHUTDOWN_GRACE,
            dispatch: DispatchSettings::default(),
        }
    }
}

/// Takes sync tasks from `queue`, market-data tasks from its market-data sibling
/// (`MarketDataQueue`, one at a time) and report tasks from its report sibling (`ReportQueue`,
/// `reports.concurrency` at a time), and runs the dispatcher until `shutdown` completes, then
/// lets in-flight jobs finish (up to the grace period), hands back the syncs still running,
/// and returns. Restarts by itself after a Redis failure.
pub async fn run_worker<F>(
    queue: SyncQueue,
    cx: SyncContext,
    market_data: MarketDataSettings,
    reports: ReportSettings,
    options: WorkerOptions,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let shutdown = shutdown.shared();
    let (stop_dispatch, dispatch_stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(crate::dispatch::run_dispatcher(
        cx.clone(),
        queue.clone(),
        options.dispatch.clone(),
        dispatch_stopped,
    ));
    let pipeline_cx = cx.clone();
    let delivery = Delivery::new(
        max_deliveries(cx.policy.max_attempts),
        move |task, attempt| {
            let cx = pipeline_cx.clone();
            async move { pipeline::run_attempt(&cx, task, attempt).await }.boxed()
        },
    );
    let settings = WorkerSettings {
        concurrency: options.concurrency,
        poll_interval: options.poll_interval,
        grace: options.grace,
    };
    let jobs = MarketDataJobs::new(cx.clone(), market_data);
    let market_delivery = Delivery::new(
        max_deliveries(cx.policy.max_attempts),
        move |task, attempt| {
            let jobs = jobs.clone();
            async move { crate::market_data::run_attempt(&jobs, task, attempt).await }.boxed()
        },
    );
    // One market-data run at a time per worker: they are rare and load one platform table.
    let market_settings = WorkerSettings {
        concurrency: 1,
        ..settings
    };
    let market_queue = queue.of_kind::<MarketDataTask>();
    let report_concurrency = reports.concurrency;
    let report_jobs = ReportJobs::new(cx.clone(), reports);
    let report_delivery = Delivery::new(
        max_deliveries(cx.policy.max_attempts),
        move |task, attempt| {
            let jobs = report_jobs.clone();
            async move { crate::reports::run_attempt(&jobs, task, attempt).await }.boxed()
        },
    );
    // Rendering is CPU work beside the syncs' I/O: a few at a time per worker.
    let report_settings = WorkerSettings {
        concurrency: report_concurrency,
        ..settings
    };
    let report_queue = queue.of_kind::<ReportTask>();
    let (result, market_result, report_result) = tokio::join!(
        run_deliveries(&queue, delivery, &settings, shutdown.clone()),
        run_deliveries(
            &market_queue,
            market_delivery,
            &market_settings,
            shutdown.clone()
        ),
        run_deliveries(&report_queue, report_delivery, &report_settings, shutdown),
    );
    let _ = stop_dispatch.send(true);
    let _ = dispatcher.await;
    if let Err(outlived) = report_result {
        // Its lease runs out and the dispatcher gives it to another worker.
        tracing::warn!(reason = %outlived, "a report outlived the grace period");
    }
    if let Err(outlived) = market_result {
        // Its lease runs out and the dispatcher gives it to another worker.
        tracing::warn!(reason = %outlived, "a market-data run outlived the grace period");
    }
    if let Err(outlived) = result {
        // Not a failure of the worker: the syncs that outlived the grace period go back to
        // the queue and run again elsewhere (their loads cannot commit here any more).
        tracing::warn!(reason = %outlived, "handing back the syncs still running");
        pipeline::hand_back(&cx).await;
    }
    Ok(())
}

/// Deliveries after which a task that keeps asking for another attempt is abandoned.
fn max_deliveries(max_attempts: u32) -> u32 {
    max_attempts
        .saturating_add(REDELIVERY_HEADROOM)
        .min(APALIS_REDIS_ATTEMPT_LIMIT)
}

/// How a worker consumes; separate from [`run_worker`]'s arguments so tests can shorten them.
#[derive(Clone, Copy)]
struct WorkerSettings {
    concurrency: usize,
    poll_interval: Duration,
    grace: Duration,
}

/// A kind of job this worker consumes: a queue [`Job`] with the span its deliveries run in.
pub trait Consumed: Job + Clone {
    /// The span around one delivery (`attempt` counts from 1).
    fn span(&self, attempt: usize) -> Span;
}

impl Consumed for SyncTask {
    fn span(&self, attempt: usize) -> Span {
        tracing::info_span!("sync_task", run_id = %self.run_id, tenant_id = %self.tenant_id,
            connection_id = %self.connection_id, attempt)
    }
}

impl Consumed for MarketDataTask {
    fn span(&self, attempt: usize) -> Span {
        tracing::info_span!("market_data_task", run_id = %self.run_id, attempt)
    }
}

impl Consumed for ReportTask {
    fn span(&self, attempt: usize) -> Span {
        tracing::info_span!("report_task", report_id = %self.report_id,
            tenant_id = %self.tenant_id, attempt)
    }
}

/// One attempt of a task, as the handler runs it: the pipeline, or a test's stand-in.
type AttemptFn<J> = dyn Fn(J, u32) -> BoxFuture<'static, AttemptOutcome> + Send + Sync;

/// What the handler needs besides the task, shared through apalis' `Data`.
struct Delivery<J> {
    run_attempt: Arc<AttemptFn<J>>,
    max_deliveries: u32,
}

impl<J> Clone for Delivery<J> {
    fn clone(&self) -> Self {
        Delivery {
            run_attempt: self.run_attempt.clone(),
            max_deliveries: self.max_deliveries,
        }
    }
}

impl<J> Delivery<J> {
    fn new<A>(max_deliveries: u32, run_attempt: A) -> Self
    where
        A: Fn(J, u32) -> BoxFuture<'static, AttemptOutcome> + Send + Sync + 'static,
    {
        Delivery {
            run_attempt: Arc::new(run_attempt),
            max_deliveries,
        }
    }
}

/// The pipeline asked for another attempt; apalis-redis re-schedules the task.
#[derive(Debug, thiserror::Error)]
#[error("attempt failed, the task will be re-delivered: {0}")]
struct RetryRequested(String);

/// The task was delivered [`max_deliveries`] times and still asked for another attempt.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {deliveries} deliveries: {reason}")]
struct DeliveriesExhausted {
    deliveries: u32,
    reason: String,
}

/// The apalis handler: runs one attempt and turns its outcome into an acknowledgement (`Ok`), a
/// re-delivery (an error) or the dead set (`AbortError`).
async fn deliver<J: Consumed>(
    task: J,
    attempt: Attempt,
    delivery: Data<Delivery<J>>,
) -> Result<(), BoxDynError> {
    // apalis counts from 1 by the time the handler runs.
    let attempt = u32::try_from(attempt.current()).unwrap_or(u32::MAX);
    match (delivery.run_attempt)(task, attempt).await {
        AttemptOutcome::Finished(status) => {
            tracing::info!(kind = J::KIND, status = status.as_str(), "run finished");
            Ok(())
        }
        AttemptOutcome::Skipped => {
            tracing::info!("the run is not queued and due; delivery skipped");
            Ok(())
        }
        AttemptOutcome::Abandoned => Ok(()),
        AttemptOutcome::Retry(reason) if attempt >= delivery.max_deliveries => {
            tracing::error!(%reason, deliveries = attempt,
                "giving up on the task; its run keeps the status PostgreSQL last recorded");
            Err(AbortError::new(DeliveriesExhausted {
                deliveries: attempt,
                reason,
            })
            .into())
        }
        AttemptOutcome::Retry(reason) => Err(RetryRequested(reason).into()),
    }
}

/// The span around one delivery. apalis increments the attempt after the span is made.
fn task_span<J: Consumed>(task: &Task<J>) -> Span {
    task.args.span(task.attempt() + 1)
}

/// Builds one apalis worker on `ctx` and returns its event stream (polling it runs the worker).
fn worker_events<J: Consumed>(
    queue: &JobQueue<J>,
    ctx: WorkerContext,
    delivery: Delivery<J>,
    settings: &WorkerSettings,
) -> impl Stream<Item = Result<Event, WorkerError>> + Send + use<J> {
    let backend = RedisStorage::<J>::new(queue.connection())
        .with_config(queue.config().clone())
        .poll_with_interval(settings.poll_interval);
    // A transient failure is expected and logged by the pipeline: warn, not error.
    let trace = TraceLayer::new()
        .make_span_with(task_span::<J> as fn(&Task<J>) -> Span)
        .on_failure(DefaultOnFailure::new().level(Level::WARN));
    WorkerBuilder::new(ctx)
        .backend(backend)
        .data(delivery)
        .concurrency(settings.concurrency.max(1))
        // Inside `parallelize` so the span is entered on the spawned task that runs the sync.
        .parallelize(tokio::spawn)
        .layer(trace)
        .catch_panic()
        .build(deliver::<J>)
        .stream()
}

/// Runs workers until `shutdown`, replacing a worker that fails (Redis lost) with a new one.
async fn run_deliveries<J: Consumed, F>(
    queue: &JobQueue<J>,
    delivery: Delivery<J>,
    settings: &WorkerSettings,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = pin!(shutdown.fuse());
    let mut restart_delay = RESTART_DELAY_MIN;
    loop {
        let ctx = WorkerContext::new(&worker_name());
        let mut events = pin!(worker_events(
            queue,
            ctx.clone(),
            delivery.clone(),
            settings
        ));
        tracing::info!(
            worker = ctx.name(),
            queue = queue.name(),
            concurrency = settings.concurrency,
            "queue worker started"
        );
        let started = Instant::now();
        let failure = tokio::select! {
            () = &mut shutdown => None,
            failure = next_failure(&mut events) => Some(failure),
        };
        let drained = drain(queue, &ctx, &mut events, settings.grace, failure.is_some()).await;
        let Some(failure) = failure else {
            return drained.map_err(|running| {
                anyhow::anyhow!(
                    "{running} {} run(s) still running after the {:?} grace period",
                    J::KIND,
                    settings.grace
                )
            });
        };
        if let Err(running) = drained {
            tracing::error!(
                worker = ctx.name(),
                running,
                "abandoned running syncs after a Redis failure"
            );
        }
        if started.elapsed() > RESTART_DELAY_MAX {
            restart_delay = RESTART_DELAY_MIN; // it had been working: a new incident
        }
        tracing::error!(worker = ctx.name(), error = %failure, "queue worker failed; restarting in {restart_delay:?}");
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(restart_delay) => {}
        }
        restart_delay = (restart_delay * 2).min(RESTART_DELAY_MAX);
    }
}

/// Drives a worker until it fails; apalis ends a worker on its first backend error.
async fn next_failure<S>(events: &mut S) -> anyhow::Error
where
    S: Stream<Item = Result<Event, WorkerError>> + Unpin,
{
    while let Some(event) = events.next().await {
        if let Err(e) = event {
            return e.into();
        }
    }
    anyhow::anyhow!("the worker stopped by itself")
}

/// Lets in-flight tasks finish, then stops the worker. Errs with the number of tasks still
/// running when `grace` runs out. See the module docs for why it pauses before stopping.
///
/// A failed worker no longer heartbeats, so with `failed` its heartbeat is kept up here: other
/// workers must not hand its still-running syncs to someone else.
async fn drain<J: Job, S>(
    queue: &JobQueue<J>,
    ctx: &WorkerContext,
    events: &mut S,
    grace: Duration,
    failed: bool,
) -> Result<(), usize>
where
    S: Stream<Item = Result<Event, WorkerError>> + Unpin,
{
    if ctx.is_pending() {
        return Ok(()); // never polled: it has fetched nothing
    }
    let _ = ctx.pause(); // fails only if the worker already stopped, which is what we want
    let deadline = tokio::time::sleep(grace);
    let mut deadline = pin!(deadline);
    let mut check = tokio::time::interval(DRAIN_CHECK_INTERVAL);
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    let mut stopped = false;
    loop {
        tokio::select! {
            event = events.next() => match event {
                None => return Ok(()),
                Some(Ok(_)) => {}
                // With nothing running, the error came from the worker's own clean-up, and apalis
                // must not be polled again after that (it would resume a finished future).
                Some(Err(e)) if ctx.task_count() == 0 => {
                    tracing::warn!(worker = ctx.name(), error = %e,
                        "could not flush the last acknowledgements; those tasks will be delivered again");
                    return Ok(());
                }
                // Running syncs need the worker polled until they finish.
                Some(Err(e)) => tracing::warn!(worker = ctx.name(), error = %e, "queue error while draining"),
            },
            _ = check.tick(), if !stopped => {
                if ctx.task_count() == 0 {
                    stopped = true;
                    let _ = ctx.stop();
                }
            }
            _ = heartbeat.tick(), if failed => keep_alive(queue, ctx.name()).await,
            () = &mut deadline => return Err(ctx.task_count()),
        }
    }
}

/// Records a heartbeat for `worker` as apalis-redis does (its score in `{queue}:workers` is the
/// time in seconds), but only if it is still registered. Errors are ignored: Redis may be down.
async fn keep_alive<J: Job>(queue: &JobQueue<J>, worker: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result: redis::RedisResult<()> = redis::cmd("ZADD")
        .arg(queue.config().workers_set())
        .arg("XX")
        .arg(now)
        .arg(worker)
        .query_async(&mut queue.connection())
        .await;
    if let Err(e) = result {
        tracing::debug!(worker, error = %e, "could not record a heartbeat while draining");
    }
}

/// A unique worker name: apalis-redis refuses to register a name it saw alive recently.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

/// What [`deliver_empty_tasks`] measured.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct EmptyTaskRun {
    /// Pushing the tasks one by one, as the API and the dispatcher do.
    pub push: Duration,
    /// From the worker's start until the last task was delivered and acknowledged.
    pub deliver: Duration,
}

/// Benchmark support (`cargo bench -p eam-worker --bench queue`): pushes `tasks` tasks and
/// delivers them through the same apalis worker as real syncs (queue settings, tracing layer,
/// panic guard, acknowledgement) with an attempt that does nothing, so what is measured is the
/// queue's own cost per job.
#[doc(hidden)]
pub async fn deliver_empty_tasks(
    queue: &SyncQueue,
    tasks: usize,
    concurrency: usize,
    poll_interval: Duration,
) -> anyhow::Result<EmptyTaskRun> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let started = Instant::now();
    for _ in 0..tasks {
        let task = SyncTask {
            run_id: RunId(uuid::Uuid::now_v7()),
            tenant_id: eam_store::TenantId(uuid::Uuid::nil()),
            connection_id: eam_store::ConnectionId(uuid::Uuid::nil()),
        };
        queue.push(task, 1).await?;
    }
    let push = started.elapsed();
    let delivered = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(tokio::sync::Notify::new());
    let delivery = {
        let (delivered, all_done) = (delivered.clone(), all_done.clone());
        Delivery::new(1, move |_task, _attempt| {
            if delivered.fetch_add(1, Ordering::SeqCst) + 1 == tasks {
                all_done.notify_one();
            }
            async { AttemptOutcome::Skipped }.boxed()
        })
    };
    let settings = WorkerSettings {
        concurrency,
        poll_interval,
        grace: Duration::from_secs(10),
    };
    let started = Instant::now();
    let notified = all_done.clone();
    let shutdown = async move { notified.notified().await };
    run_deliveries(queue, delivery, &settings, shutdown).await?;
    let deliver = started.elapsed();
    anyhow::ensure!(
        delivered.load(Ordering::SeqCst) == tasks,
        "delivered {} of {tasks} tasks",
        delivered.load(Ordering::SeqCst)
    );
    Ok(EmptyTaskRun { push, deliver })
}

#[cfg(test)]
mod tests {
    //! Against a real Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`), one fresh queue name
    //! per test, with a stand-in for the pipeline that records each delivery.

    use std::sync::Mutex;

    use eam_store::runs::RunStatus;
    use eam_store::{ConnectionId, TenantId};
    use tokio::sync::{Semaphore, oneshot};
    use tokio::task::JoinHandle;
    use uuid::Uuid;

    use super::*;
    use eam_queue::{CONNECT_TIMEOUT, QueueError, task_id};

    const DEADLINE: Duration = Duration::from_secs(15);

    fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    fn new_task() -> SyncTask {
        SyncTask {
            run_id: RunId(Uuid::now_v7()),
            tenant_id: TenantId(Uuid::new_v4()),
            connection_id: ConnectionId(Uuid::new_v4()),
        }
    }

    async fn new_queue() -> SyncQueue {
        let name = format!("eam-worker-test-{}", Uuid::new_v4().simple());
        SyncQueue::connect(&redis_url(), &name)
            .await
            .expect("Redis reachable at REDIS_URL")
    }

    type Deliveries = Arc<Mutex<Vec<(RunId, u32, Instant)>>>;

    /// A worker whose "pipeline" records each delivery and answers with `outcome(attempt)`.
    struct TestWorker {
        deliveries: Deliveries,
        stop: Option<oneshot::Sender<()>>,
        handle: JoinHandle<anyhow::Result<()>>,
    }

    impl TestWorker {
        fn start<O>(queue: &SyncQueue, concurrency: usize, max_deliveries: u32, outcome: O) -> Self
        where
            O: Fn(u32) -> BoxFuture<'static, AttemptOutcome> + Send + Sync + 'static,
        {
            let deliveries = Deliveries::default();
            let log = deliveries.clone();
            let delivery = Delivery::new(max_deliveries, move |task: SyncTask, attempt| {
                log.lock()
                    .unwrap()
                    .push((task.run_id, attempt, Instant::now()));
                outcome(attempt)
            });
            let settings = WorkerSettings {
                concurrency,
                poll_interval: Duration::from_millis(50),
                grace: Duration::from_secs(10),
            };
            let (stop, stopped) = oneshot::channel::<()>();
            let queue = queue.clone();
            let handle = tokio::spawn(async move {
                run_deliveries(&queue, delivery, &settings, async {
                    let _ = stopped.await;
                })
                .await
            });
            TestWorker {
                deliveries,
                stop: Some(stop),
                handle,
            }
        }

        fn attempts_of(&self, run: RunId) -> Vec<u32> {
            self.deliveries
                .lock()
                .unwrap()
                .iter()
                .filter(|d| d.0 == run)
                .map(|d| d.1)
                .collect()
        }

        fn delivered(&self) -> usize {
            self.deliveries.lock().unwrap().len()
        }

        /// Requests shutdown and waits for the worker to return.
        async fn shut_down(mut self) -> (anyhow::Result<()>, Duration) {
            let asked = Instant::now();
            let _ = self.stop.take().expect("not stopped yet").send(());
            let result = tokio::time::timeout(DEADLINE, self.handle)
                .await
                .expect("worker returns")
                .expect("no panic");
            (result, asked.elapsed())
        }
    }

    fn finished(_attempt: u32) -> BoxFuture<'static, AttemptOutcome> {
        async { AttemptOutcome::Finished(RunStatus::Succeeded) }.boxed()
    }

    /// Polls `condition` until it holds or the deadline passes.
    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the first push of `run` is in a set of task ids.
    async fn is_member(queue: &SyncQueue, set: String, run: RunId) -> bool {
        redis::cmd("SISMEMBER")
            .arg(set)
            .arg(task_id(run, 1).to_string())
            .query_async(&mut queue.connection())
            .await
            .expect("SISMEMBER")
    }

    /// The status apalis-redis keeps in the task's metadata (`Pending` until a worker takes it).
    async fn task_status(queue: &SyncQueue, run: RunId) -> String {
        redis::cmd("HGET")
            .arg(format!(
                "{}:{}",
                queue.config().job_meta_hash(),
                task_id(run, 1)
            ))
            .arg("status")
            .query_async(&mut queue.connection())
            .await
            .expect("HGET")
    }

    /// Deletes the test queue's keys from the shared Redis.
    async fn remove(queue: SyncQueue) {
        let mut conn = queue.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", queue.name()))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let _: () = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(queue.config().workers_set())
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    /// A backlog past Lua's `unpack` limit: apalis-redis' fetch script moves every due
    /// scheduled task to the active list in one `rpush(unpack(ids))`, which fails from about
    /// 8,000 ids, so a queue that filled while no worker ran would deliver nothing. Twenty
    /// thousand tasks pushed with no worker running are all delivered, each once, by three.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backlog_of_twenty_thousand_tasks_drains_through_three_workers_each_once() {
        const TASKS: usize = 20_000;
        let queue = new_queue().await;
        let mut pushed = std::collections::HashSet::new();
        for _ in 0..TASKS {
            let task = new_task();
            queue.push(task, 1).await.unwrap();
            pushed.insert(task.run_id);
        }
        let workers: Vec<TestWorker> = (0..3)
            .map(|_| TestWorker::start(&queue, 4, 8, finished))
            .collect();
        let start = Instant::now();
        while workers.iter().map(TestWorker::delivered).sum::<usize>() < TASKS {
            assert!(
                start.elapsed() < Duration::from_secs(240),
                "{} of {TASKS} delivered",
                workers.iter().map(TestWorker::delivered).sum::<usize>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut delivered = std::collections::HashSet::new();
        for w in &workers {
            assert!(w.delivered() > 0, "every worker took a share");
            for (run, attempt, _) in w.deliveries.lock().unwrap().iter() {
                assert_eq!(*attempt, 1);
                assert!(delivered.insert(*run), "{run} delivered twice");
            }
        }
        assert_eq!(delivered, pushed);
        for w in workers {
            let (result, _) = w.shut_down().await;
            result.unwrap();
        }
        remove(queue).await;
    }

    #[tokio::test]
    async fn a_pushed_task_is_delivered_once_and_acknowledged() {
        let queue = new_queue().await;
        let worker = TestWorker::start(&queue, 2, 8, finished);
        let task = new_task();
        queue.push(task, 1).await.unwrap();

        eventually("the task is delivered", || worker.delivered() == 1).await;
        let (result, _) = worker.shut_down().await;
        result.unwrap();
        assert!(
            is_member(&queue, queue.config().done_jobs_set(), task.run_id).await,
            "acknowledged as done"
        );
        remove(queue).await;
    }

    #[tokio::test]
    async fn a_task_that_asks_twice_for_another_attempt_is_delivered_three_times_with_delays() {
        let queue = new_queue().await;
        let worker = TestWorker::start(&queue, 2, 8, |attempt| {
            async move {
                if attempt < 3 {
                    AttemptOutcome::Retry("bank unavailable".into())
                } else {
                    AttemptOutcome::Finished(RunStatus::Succeeded)
                }
            }
            .boxed()
        });
        let task = new_task();
        queue.push(task, 1).await.unwrap();

        eventually("the third delivery", || worker.delivered() == 3).await;
        assert_eq!(worker.attempts_of(task.run_id), vec![1, 2, 3]);
        let times: Vec<Instant> = worker
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.2)
            .collect();
        // apalis-redis waits `attempt` seconds on a whole-second clock: (0, 1] s, then (1, 2] s.
        assert!(
            times[2] - times[1] > Duration::from_millis(900),
            "second re-delivery waited {:?}",
            times[2] - times[1]
        );
        worker.shut_down().await.0.unwrap();
        assert!(is_member(&queue, queue.config().done_jobs_set(), task.run_id).await);
        remove(queue).await;
    }

    #[tokio::test]
    async fn a_task_that_always_asks_for_another_attempt_goes_dead_after_the_cap() {
        let queue = new_queue().await;
        let worker = TestWorker::start(&queue, 2, 2, |_| {
            async { AttemptOutcome::Retry("database down".into()) }.boxed()
        });
        let task = new_task();
        queue.push(task, 1).await.unwrap();

        let dead = queue.config().dead_jobs_set();
        let start = Instant::now();
        while !is_member(&queue, dead.clone(), task.run_id).await {
            assert!(
                start.elapsed() < DEADLINE,
                "the task never reached the dead set"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(worker.attempts_of(task.run_id), vec![1, 2]);
        worker.shut_down().await.0.unwrap();
        remove(queue).await;
    }

    #[tokio::test]
    async fn tasks_on_another_queue_are_not_seen() {
        let queue = new_queue().await;
        let other = new_queue().await;
        let foreign = new_task();
        other.push(foreign, 1).await.unwrap();
        let worker = TestWorker::start(&queue, 2, 8, finished);
        // Pushed after the foreign task: if the worker could see both, it would take that first.
        let own = new_task();
        queue.push(own, 1).await.unwrap();

        eventually("the worker's own task is delivered", || {
            worker.attempts_of(own.run_id) == vec![1]
        })
        .await;
        let deliveries = worker.deliveries.clone();
        worker.shut_down().await.0.unwrap();
        assert!(
            deliveries
                .lock()
                .unwrap()
                .iter()
                .all(|d| d.0 != foreign.run_id),
            "the foreign task was delivered"
        );
        assert_eq!(
            task_status(&other, foreign.run_id).await,
            "Pending",
            "the foreign task still waits on its own queue"
        );
        remove(queue).await;
        remove(other).await;
    }

    #[tokio::test]
    async fn shutdown_returns_promptly_when_nothing_is_in_flight() {
        let queue = new_queue().await;
        let worker = TestWorker::start(&queue, 4, 8, finished);
        let workers = queue.config().workers_set();
        let start = Instant::now();
        loop {
            let registered: usize = redis::cmd("ZCARD")
                .arg(&workers)
                .query_async(&mut queue.connection())
                .await
                .unwrap();
            if registered > 0 {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "the worker never registered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let (result, took) = worker.shut_down().await;
        result.unwrap();
        assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
        remove(queue).await;
    }

    #[tokio::test]
    async fn shutdown_waits_for_every_task_in_flight_and_acknowledges_them() {
        // Six at once: more than apalis' acknowledgement channel holds (four), see `drain`.
        const IN_FLIGHT: usize = 6;
        let queue = new_queue().await;
        let gate = Arc::new(Semaphore::new(0));
        let release = gate.clone();
        let worker = TestWorker::start(&queue, IN_FLIGHT, 8, move |_| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.expect("gate open");
                AttemptOutcome::Finished(RunStatus::Succeeded)
            }
            .boxed()
        });
        let tasks: Vec<SyncTask> = (0..IN_FLIGHT + 1).map(|_| new_task()).collect();
        for task in &tasks {
            queue.push(*task, 1).await.unwrap();
        }
        eventually("all slots are busy", || worker.delivered() == IN_FLIGHT).await;

        let deliveries = worker.deliveries.clone();
        let mut shutdown = tokio::spawn(worker.shut_down());
        let early = tokio::time::timeout(Duration::from_millis(300), &mut shutdown).await;
        assert!(early.is_err(), "shutdown must wait for the running tasks");
        release.add_permits(IN_FLIGHT);
        let (result, _) = shutdown.await.unwrap();
        result.unwrap();

        assert_eq!(
            deliveries.lock().unwrap().len(),
            IN_FLIGHT,
            "no new task taken while shutting down"
        );
        let mut acknowledged = 0;
        for task in &tasks {
            if is_member(&queue, queue.config().done_jobs_set(), task.run_id).await {
                acknowledged += 1;
            }
        }
        assert_eq!(acknowledged, IN_FLIGHT);
        let last = tasks[IN_FLIGHT].run_id;
        assert_eq!(
            task_status(&queue, last).await,
            "Pending",
            "the task not yet started stays queued"
        );
        remove(queue).await;
    }

    #[tokio::test]
    async fn pushing_a_run_twice_is_refused() {
        let queue = new_queue().await;
        let task = new_task();
        queue.push(task, 1).await.unwrap();
        let second = queue.push(task, 1).await;
        assert!(
            matches!(second, Err(QueueError::AlreadyQueued(run)) if run == task.run_id),
            "{second:?}"
        );
        remove(queue).await;
    }

    #[tokio::test]
    async fn connecting_to_an_unreachable_redis_fails_quickly() {
        let start = Instant::now();
        let result = SyncQueue::connect("redis://127.0.0.1:1", "unreachable").await;
        assert!(
            matches!(
                result,
                Err(QueueError::Connect(_) | QueueError::ConnectTimeout(_))
            ),
            "{:?}",
            result.err()
        );
        assert!(start.elapsed() <= CONNECT_TIMEOUT + Duration::from_secs(1));
    }
}
