//! The job queue's producer: what the API (and the worker's dispatcher) need to enqueue, and
//! the job envelopes themselves. Consuming is the worker's (`eam_worker::queue`).
//!
//! Redis (apalis-redis 1.0) is only the transport: PostgreSQL records every run.
//!
//! # Producing
//!
//! [`JobQueue::push`] writes a task whose id is the run id, so the task's Redis keys are the run
//! id. It goes through a push script of its own (`PUSH_SCRIPT`), not `TaskSink::push` nor
//! apalis-redis' push script: that one files every task in the scheduled set, which its workers
//! cannot drain past about 8,000 tasks (see the script's docs), and `TaskSink` throws away
//! whether the task was new: a second push for the same run is refused with
//! [`QueueError::AlreadyQueued`] instead of being silently ignored. Pushes share one multiplexed `ConnectionManager`, which reconnects on its own. Every
//! Redis error is returned so the API can answer 503.
//!
//! # Job kinds
//!
//! A job is a plain serde struct implementing [`Job`]. [`SyncQueue`] is the queue of
//! [`SyncTask`]s, under the configured queue name; another kind's queue is that name suffixed
//! with `-<kind>` ([`MarketDataQueue`]: `<name>-market-data`, [`ReportQueue`]: `<name>-report`), so a worker of one kind never
//! takes another's jobs. [`JobQueue::of_kind`] reaches another kind's queue over the same
//! Redis connection.

use std::marker::PhantomData;
use std::sync::LazyLock;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use apalis_redis::Config;
use eam_model::{ConnectionId, RunId, TenantId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long [`SyncQueue::connect`] may take, all retries included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One TCP connection attempt to Redis.
const CONNECTION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// One Redis command. The worker treats a timeout as a lost connection and restarts.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a worker proves it is alive and sweeps up the tasks of dead workers.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Heartbeats a worker may miss before its in-flight tasks go back on the queue (30 s).
const MISSED_HEARTBEATS: usize = 6;

/// apalis-redis' attempts limit of a task that states none (ours: PostgreSQL decides retries).
const DEFAULT_MAX_ATTEMPTS: usize = 25;

/// Puts one task straight on the active list, in the layout apalis-redis' workers read (the
/// task's data in the data hash, its metadata hash, the list, the signal), and answers 1, or 0
/// when a task of that id exists already.
///
/// Not apalis-redis' own push script: that one files every task, even one due now, in the
/// scheduled set, and its fetch script promotes all due scheduled tasks with one
/// `rpush(KEYS[2], unpack(ids))`, which Lua refuses past its stack limit (about 8,000 ids). A
/// backlog that large, pushed while the workers were down, would never be delivered: every
/// fetch would fail. On the active list a backlog of any size is fetched a batch at a time.
static PUSH_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
-- KEYS: data hash, active list, signal list, metadata hash prefix
-- ARGV: task id, data, attempt, max attempts, metadata (JSON object), publish (true/false)
if redis.call("hsetnx", KEYS[1], ARGV[1], ARGV[2]) == 0 then
    return 0
end
local fields = {"attempts", ARGV[3], "max_attempts", ARGV[4], "status", "Pending",
                "idempotency_key", ""}
local ok, extra = pcall(cjson.decode, ARGV[5])
if ok and type(extra) == "table" then
    for key, value in pairs(extra) do
        if type(value) == "table" then
            value = cjson.encode(value)
        end
        fields[#fields + 1] = key
        fields[#fields + 1] = tostring(value)
    end
end
redis.call("hset", KEYS[4] .. ":" .. ARGV[1], unpack(fields))
redis.call("rpush", KEYS[2], ARGV[1])
if ARGV[6] == "true" or ARGV[6] == "1" then
    redis.call("publish", "tasks:" .. KEYS[2] .. ":available", ARGV[1])
end
redis.call("del", KEYS[3])
redis.call("lpush", KEYS[3], 1)
return 1
"#,
    )
});

/// A sync job: which run of which connection of which tenant. PostgreSQL's `sync_runs` holds
/// everything else about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTask {
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

/// A kind of job carried by the queue: a plain serde envelope naming its run. New kinds
/// (valuation, report, delivery) implement it and get a queue of their own.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The kind's name; every kind but `sync` suffixes the queue's name with it.
    const KIND: &'static str;
    /// The run (in PostgreSQL) the job belongs to: the task id is this run and a push number.
    fn run_id(&self) -> RunId;
}

impl Job for SyncTask {
    const KIND: &'static str = "sync";
    fn run_id(&self) -> RunId {
        self.run_id
    }
}

/// A market-data job: one run of `market_data_runs` (platform-wide, no tenant), which holds
/// everything else about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketDataTask {
    pub run_id: RunId,
}

impl Job for MarketDataTask {
    const KIND: &'static str = "market-data";
    fn run_id(&self) -> RunId {
        self.run_id
    }
}

/// The queue of market-data jobs.
pub type MarketDataQueue = JobQueue<MarketDataTask>;

/// A report job: one report of `reports` (of a tenant), which holds everything else about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTask {
    pub report_id: RunId,
    pub tenant_id: TenantId,
}

impl Job for ReportTask {
    const KIND: &'static str = "report";
    fn run_id(&self) -> RunId {
        self.report_id
    }
}

/// The queue of report jobs.
pub type ReportQueue = JobQueue<ReportTask>;

/// Why the queue could not be reached or a task not enqueued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue name must not be empty")]
    EmptyQueueName,
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    #[error("could not connect to Redis: {0}")]
    Connect(#[source] redis::RedisError),
    #[error("could not connect to Redis within {0:?}")]
    ConnectTimeout(Duration),
    #[error("Redis is unavailable: {0}")]
    Unavailable(#[from] apalis_redis::Error),
    #[error("could not encode the task: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("a task for run {0} was already pushed")]
    AlreadyQueued(RunId),
}

/// A handle on one named queue of one job kind in Redis, cheap to clone: producers push with
/// it, workers consume.
pub struct JobQueue<J: Job> {
    conn: ConnectionManager,
    config: Config,
    /// The configured name, before the kind's suffix (see [`JobQueue::of_kind`]).
    base: String,
    kind: PhantomData<fn(J)>,
}

/// The queue of sync jobs.
pub type SyncQueue = JobQueue<SyncTask>;

impl<J: Job> Clone for JobQueue<J> {
    fn clone(&self) -> Self {
        JobQueue {
            conn: self.conn.clone(),
            config: self.config.clone(),
            base: self.base.clone(),
            kind: PhantomData,
        }
    }
}

impl<J: Job> JobQueue<J> {
    /// Connects to Redis, failing within [`CONNECT_TIMEOUT`]; `queue` (suffixed with the job
    /// kind for every kind but `sync`) prefixes every Redis key.
    pub async fn connect(redis_url: &str, queue: &str) -> Result<Self, QueueError> {
        if queue.trim().is_empty() {
            return Err(QueueError::EmptyQueueName);
        }
        let client = redis::Client::open(redis_url).map_err(QueueError::InvalidUrl)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_ATTEMPT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            client.get_connection_manager_with_config(manager),
        )
        .await
        .map_err(|_| QueueError::ConnectTimeout(CONNECT_TIMEOUT))?
        .map_err(QueueError::Connect)?;
        Ok(JobQueue {
            conn,
            config: queue_config(&kind_queue_name::<J>(queue)),
            base: queue.to_owned(),
            kind: PhantomData,
        })
    }

    /// The queue of another job kind under the same configured name, sharing this one's
    /// Redis connection (one process needs one connection, whatever kinds it pushes).
    pub fn of_kind<K: Job>(&self) -> JobQueue<K> {
        JobQueue {
            conn: self.conn.clone(),
            config: queue_config(&kind_queue_name::<K>(&self.base)),
            base: self.base.clone(),
            kind: PhantomData,
        }
    }

    /// The queue's name, the prefix of its Redis keys.
    pub fn name(&self) -> &str {
        self.config.queue.as_ref()
    }

    /// Checks Redis answers on the queue's connection (readiness); the connection manager
    /// reconnects by itself once Redis is back.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(QueueError::Connect)?;
        Ok(())
    }

    /// Enqueues a task for immediate delivery. `push` is the run's push number (1 for the
    /// first, as recorded in `sync_runs.enqueue_count`): the task id is the run id and that
    /// number, so a run can be pushed again (after a retry wait, a lost task, a dead worker)
    /// while one push of it can never be enqueued twice.
    pub async fn push(&self, task: J, push: u32) -> Result<(), QueueError> {
        let body = serde_json::to_vec(&task)?;
        let redis_task = TaskBuilder::new(body)
            .task_id(task_id(task.run_id(), push))
            .build();
        let id = task_id(task.run_id(), push).to_string();
        let mut conn = self.conn.clone();
        let enqueued: u32 = PUSH_SCRIPT
            .key(self.config.job_data_hash())
            .key(self.config.active_jobs_list())
            .key(self.config.signal_list())
            .key(self.config.job_meta_hash())
            .arg(&id)
            .arg(&redis_task.args)
            .arg(redis_task.attempt())
            .arg(redis_task.max_attempts().unwrap_or(DEFAULT_MAX_ATTEMPTS))
            .arg(serde_json::to_string(redis_task.metadata())?)
            .arg(self.config.emit_events)
            .invoke_async(&mut conn)
            .await
            .map_err(apalis_redis::Error::from)?;
        if enqueued == 0 {
            return Err(QueueError::AlreadyQueued(task.run_id()));
        }
        Ok(())
    }
}

impl<J: Job> JobQueue<J> {
    /// The queue's Redis connection (for the worker that consumes it).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The queue's apalis-redis settings (for the worker that consumes it).
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The Redis name of kind `J`'s queue: the configured name, suffixed with the kind for every
/// kind but `sync`.
fn kind_queue_name<J: Job>(queue: &str) -> String {
    if J::KIND == SyncTask::KIND {
        queue.to_owned()
    } else {
        format!("{queue}-{}", J::KIND)
    }
}

/// The apalis-redis settings of a queue; see the module docs for why each differs from apalis'.
fn queue_config(queue: &str) -> Config {
    Config::default()
        .queue(queue)
        .batch_size(1)
        .heartbeat_interval(HEARTBEAT_INTERVAL)
        .missed_heartbeats(MISSED_HEARTBEATS)
        .lock_tasks(false)
}

/// The task id of one push of a run: `<run id>.<push number>`, so Redis keys name the run.
pub fn task_id(run: RunId, push: u32) -> TaskId {
    TaskId::from_string(format!("{}.{push}", run.0))
}
